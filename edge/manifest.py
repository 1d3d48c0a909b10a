"""``manifest.json``: the contract between the converter (writes it) and the device (reads it).

One model folder holds the models of one input size and one manifest describing them. The format
is documented in the README ("Manifest format"); bump ``FORMAT_VERSION`` on any incompatible
change. Loading is strict: a missing or mistyped field is refused with its path in the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import variants as registry
from edge.typed import SchemaError, from_dict

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """The manifest is missing, malformed, or does not describe the files beside it."""


@dataclass
class Quantization:
    scale: float
    zero_point: int


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str  # numpy name: "uint8", "int8", "float32"
    layout: str  # "NHWC"
    quantization: Quantization | None = None


@dataclass
class Agreement:
    """How closely a variant reproduces the PyTorch fp32 model on the validation images."""

    reference: str  # "pytorch-fp32"
    images: int
    region_max_abs_diff: float
    region_mean_abs_diff: float
    affinity_max_abs_diff: float
    affinity_mean_abs_diff: float
    min_iou: float
    boxes_reference: int
    boxes_variant: int
    box_precision: float
    box_recall: float


@dataclass
class Variant:
    name: str  # one of edge.variants.NAMES
    file: str  # relative to the manifest's folder
    sha256: str
    bytes: int
    target: str  # one of edge.variants.TARGETS: the backend that runs it
    input: TensorInfo
    output: TensorInfo
    op_counts: dict[str, int]
    transpose_count: int
    agreement: Agreement | None = None
    edgetpu: dict[str, Any] | None = None  # readiness check and compiler report, when relevant


@dataclass
class Manifest:
    format_version: int
    created: str  # UTC ISO-8601
    converter_version: str
    source_weights: str
    source_sha256: str
    input_size: list[int]  # [height, width]
    input_normalization: str
    toolchain: dict[str, str]
    validation_images: list[str]
    variants: list[Variant] = field(default_factory=list)
    onnx_max_abs_diff: float | None = None  # ONNX Runtime against PyTorch on validation images

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        known = ", ".join(v.name for v in self.variants)
        raise ManifestError(f"no variant {name!r} in the manifest (has: {known})")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST_NAME
        path.write_text(self.to_json())
        return path


def file_sha256(path: Path) -> str:
    """The hex sha256 the manifest records for a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_manifest(text: str, where: str = MANIFEST_NAME) -> Manifest:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if isinstance(data, dict) and data.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"{where}: format_version {data.get('format_version')!r}, this craft-edge reads {FORMAT_VERSION}"
        )
    try:
        manifest = from_dict(Manifest, data, where)
    except SchemaError as exc:
        raise ManifestError(str(exc)) from exc
    for index, variant in enumerate(manifest.variants):
        if variant.target not in registry.TARGETS:
            raise ManifestError(
                f"{where}.variants[{index}].target: {variant.target!r} is not one of {registry.TARGETS}")
    return manifest


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse_manifest(text, str(path))
