"""What a conversion produced, for people: a terminal table, ``report.md`` and a contact sheet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.models.backends.edgetpu import COMPILED_FROM, compile_note, size_notes
from edge.models.manifest import Manifest, Roles, Variant

SHEET_IMAGES = 4
SHEET_TILE_WIDTH = 320
BOX_COLOUR = (0, 255, 0)  # RGB
MAP_STRIDE = 2  # CRAFT's score maps have half the input's resolution


@dataclass
class SizeResult:
    """One input size's manifest, its folder, and material for the contact sheet."""

    manifest: Manifest
    folder: Path
    sheet_inputs: list[np.ndarray]  # letterboxed validation inputs, (H, W, 3) uint8 RGB
    sheet_boxes: dict[str, list[list[np.ndarray]]]  # column name -> per image -> boxes (score-map px)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"


def _row(variant: Variant) -> list[str]:
    agreement = variant.agreement
    readiness = (variant.edgetpu or {}).get("readiness")
    cells = [
        variant.name, variant.target, _mb(variant.bytes), variant.input.dtype, str(variant.transpose_count),
        str(sum(variant.op_counts.values())),
    ]
    if agreement is None:
        cells += ["-"] * 4
    else:
        cells += [
            f"{max(agreement.region_max_abs_diff, agreement.affinity_max_abs_diff):.1e}",
            f"{max(agreement.region_mean_abs_diff, agreement.affinity_mean_abs_diff):.1e}",
            f"{agreement.box_precision:.3f}", f"{agreement.box_recall:.3f}",
        ]
    cells.append("-" if readiness is None else ("yes" if readiness["ready"] else f"no ({len(readiness['problems'])})"))
    return cells


HEADER = ["variant", "target", "MB", "input", "TRANSPOSE", "ops", "max diff", "mean diff", "box P", "box R",
          "TPU-ready"]


def terminal_table(manifest: Manifest) -> str:
    rows = [HEADER] + [_row(v) for v in manifest.variants]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def markdown_table(manifest: Manifest) -> str:
    rows = [HEADER, ["---"] * len(HEADER)] + [_row(v) for v in manifest.variants]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def tile_compile_note(results: list[SizeResult], roles: Roles) -> str | None:
    """The tile model's compiled file, the compiler's complaint when it ran here and failed, or the
    command that compiles it on a machine that has the compiler."""
    tile = next(result for result in results if result.folder.name == roles.tile)
    source = next((v for v in tile.manifest.variants if v.name == COMPILED_FROM), None)
    compiler = ((source.edgetpu or {}).get("compiler") if source else None) or {}
    if compiler.get("ran") and not compiler.get("compiled"):
        return compiler["message"]
    return compile_note(tile.folder, tile.manifest)


def _edgetpu_section(manifest: Manifest) -> list[str]:
    lines = [f"- {note}" for note in size_notes(manifest)]
    for variant in manifest.variants:
        info = variant.edgetpu or {}
        readiness, compiler = info.get("readiness"), info.get("compiler")
        if readiness is not None:
            verdict = "ready" if readiness["ready"] else "not ready"
            lines.append(f"- `{variant.name}`: static Edge TPU check: {verdict}")
            lines += [f"  - {problem}" for problem in readiness["problems"]]
        if compiler is not None:
            lines.append(f"- `{variant.name}`: compiler: {compiler['message']}")
            if compiler.get("ops_on_tpu") is not None:
                lines.append(
                    f"  - ops on TPU {compiler['ops_on_tpu']}, on CPU {compiler['ops_on_cpu']}; parameter memory "
                    f"on-chip {compiler['on_chip_memory']}, off-chip {compiler['off_chip_memory']}"
                )
    return lines


def contact_sheet(result: SizeResult) -> np.ndarray:
    """Rows: validation images; columns: PyTorch then each variant, boxes drawn in green."""
    rows = []
    for index, pixels in enumerate(result.sheet_inputs[:SHEET_IMAGES]):
        tiles = []
        for column, per_image in result.sheet_boxes.items():
            tile = pixels.copy()
            for box in per_image[index]:
                cv2.polylines(tile, [np.round(box * MAP_STRIDE).astype(np.int32)], True, BOX_COLOUR, 2)
            factor = SHEET_TILE_WIDTH / tile.shape[1]
            tile = cv2.resize(tile, (SHEET_TILE_WIDTH, round(tile.shape[0] * factor)), interpolation=cv2.INTER_AREA)
            if index == 0:
                label = np.full((28, SHEET_TILE_WIDTH, 3), 255, dtype=np.uint8)
                cv2.putText(label, column, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
                tile = np.vstack([label, tile])
            tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def write_report(results: list[SizeResult], out_dir: Path, roles: Roles) -> Path:
    """``report.md`` and ``contact_sheet_HxW.png`` per size in ``out_dir``; returns the report's path."""
    first = results[0].manifest
    tile_note = tile_compile_note(results, roles)
    lines = [
        "# craft-edge conversion report", "",
        f"Weights `{first.source_weights}` (sha256 `{first.source_sha256[:16]}...`), created {first.created}.",
        "Toolchain: " + ", ".join(f"{k} {v}" for k, v in first.toolchain.items()) + ".", "",
        f"`manifest.json` names the roles: the coarse model is `{roles.coarse}/` (the whole frame, letterboxed), "
        f"the tile model `{roles.tile}/` (native-scale tiles; the model sized for the Edge TPU). Give this folder "
        "to `craft-edge --model`.", "",
        *([f"Edge TPU, tile model: {tile_note}", ""] if tile_note else []),
        "Agreement is measured against the PyTorch fp32 model on the validation images: max/mean absolute "
        "difference of the region and affinity maps, and precision/recall of the variant's boxes against "
        "PyTorch's boxes at IoU 0.5.", "",
    ]
    for result in results:
        manifest = result.manifest
        size = f"{manifest.input_size[0]}x{manifest.input_size[1]}"
        sheet_name = f"contact_sheet_{size}.png"
        cv2.imwrite(str(out_dir / sheet_name), cv2.cvtColor(contact_sheet(result), cv2.COLOR_RGB2BGR))
        lines += [
            f"## {size} (folder `{result.folder.name}/`)", "",
            f"Validation images ({len(manifest.validation_images)}): " + ", ".join(manifest.validation_images), "",
            f"ONNX (ONNX Runtime) against PyTorch: max abs diff {manifest.onnx_max_abs_diff:.1e} "
            "(required: rtol 1e-3, atol 1e-5).", "",
            markdown_table(manifest), "", "### Edge TPU", "", *_edgetpu_section(manifest), "",
            f"![boxes per variant]({sheet_name})", "",
        ]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
