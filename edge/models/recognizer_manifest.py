"""``OUT/recognizer/manifest.json``: the text recognizer's half of the converter-device contract
(``edge.models.manifest`` holds the detector's and the bundle index naming this folder).

Loading is strict, as for the detector: besides the schema, what would make the device read wrongly or
run out of memory is refused with its place in the file (a duplicate character shifts every class after
it; a width is the size the interpreter is allocated for).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from edge.config.paths import write_replacing
from edge.models.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    ManifestError,
    TensorInfo,
    check_variants,
    parse_json,
    read_text,
    typed,
)
from edge.models.variants import RECOGNIZER_VARIANTS

# the recognizer's narrowest input: its convolutions take a width to W/4 - 1 steps, and a loop over none
# crashes the TFLite runtime (a segmentation fault, measured at 4 px)
MIN_RECOGNIZER_WIDTH = 8
# the widest: the first interpreter is sized for the widest width (the converter writes up to 1024; at
# 30,000 one interpreter took 833 MB)
MAX_RECOGNIZER_WIDTH = 4096


@dataclass
class ReadingAgreement:
    """How closely a recognizer variant reads like the PyTorch fp32 model, on word crops."""

    reference: str  # "pytorch-fp32"
    crops: int
    same_text: float  # fraction of crops read as exactly the same string
    max_prob_diff: float  # the largest difference of any softmax probability


@dataclass
class RecognizerVariant:
    """One TFLite file: any input width (the width dimension is resized to the crop's bucket)."""

    name: str  # one of edge.models.variants.RECOGNIZER_VARIANTS
    file: str  # a file beside the manifest
    sha256: str
    bytes: int
    target: str  # one of edge.models.variants.TARGETS
    input: TensorInfo  # (1, height, -1, 1) grey pixels 0..255, width dynamic
    output: TensorInfo  # (1, -1, classes) softmax probabilities, class 0 the CTC blank; T = width/4 - 1
    op_counts: dict[str, int]
    agreement: ReadingAgreement | None = None


@dataclass
class RecognizerManifest:
    """``OUT/recognizer/manifest.json``: the word recognizer's variants and how to feed them."""

    format_version: int
    created: str  # UTC ISO-8601
    converter_version: str
    source_weights: str
    source_sha256: str
    charset: str  # class i > 0 is charset[i - 1]; class 0 is the CTC blank
    input_height: int
    widths: list[int]  # ascending: the widths a crop is padded to (the widest: wider crops are squeezed into it)
    input_normalization: str  # done inside the model: it takes grey pixels 0..255
    toolchain: dict[str, str]
    validation_crops: list[str]
    variants: list[RecognizerVariant] = field(default_factory=list)
    onnx_max_abs_diff: float | None = None  # ONNX Runtime against PyTorch on the validation crops
    rejected: dict[str, str] = field(default_factory=dict)  # variants tried and left out, and why
    conversion_seconds: float | None = None

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST_NAME
        write_replacing(path, (json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n").encode())
        return path


def load_recognizer_manifest(folder: Path) -> RecognizerManifest:
    path = folder / MANIFEST_NAME
    where = str(path)
    data = parse_json(read_text(path), where)
    if isinstance(data, dict) and "charset" not in data and "variants" in data:
        raise ManifestError(f"{where}: a detector folder's manifest, not the text recognizer's")
    manifest = typed(RecognizerManifest, data, where, (FORMAT_VERSION,), "recognizer manifests of format ")
    check_variants(manifest.variants, where)
    _check_reading(manifest, where)
    return manifest


def _check_reading(manifest: RecognizerManifest, where: str) -> None:
    if manifest.input_height < 1:
        raise ManifestError(f"{where}.input_height: {manifest.input_height} is not a height in pixels")
    widths = manifest.widths
    if (not widths or widths != sorted(set(widths)) or widths[0] < MIN_RECOGNIZER_WIDTH
            or widths[-1] > MAX_RECOGNIZER_WIDTH):
        raise ManifestError(f"{where}.widths: {widths} is not an ascending list of widths from "
                            f"{MIN_RECOGNIZER_WIDTH} to {MAX_RECOGNIZER_WIDTH} px")
    repeated = sorted({c for c in manifest.charset if manifest.charset.count(c) > 1})
    if repeated:
        raise ManifestError(f"{where}.charset: {''.join(repeated)!r} more than once (each character is one class)")
    names = [variant.name for variant in manifest.variants]
    for index, variant in enumerate(manifest.variants):
        at = f"{where}.variants[{index}]"
        if variant.name not in RECOGNIZER_VARIANTS:
            raise ManifestError(f"{at}.name: {variant.name!r} is not one of {RECOGNIZER_VARIANTS}")
        if variant.name in names[:index]:
            raise ManifestError(f"{at}.name: {variant.name!r} is listed more than once")
        if variant.input.shape[1:2] != [manifest.input_height]:
            raise ManifestError(f"{at}.input.shape: {variant.input.shape} does not take input_height "
                                f"{manifest.input_height}")
