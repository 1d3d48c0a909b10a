"""``manifest.json``: the contract between the converter (writes it) and the device (reads it).

One model folder holds the models of one input size and one manifest describing them. Since format
2, ``convert-for-device --out OUT`` writes a *bundle*: model folders side by side (``OUT/384x640``,
``OUT/288x288``) and ``OUT/manifest.json``, a small index saying which folder plays which role
(the coarse model that sees the whole frame letterboxed, the tile model that sees native-scale
tiles). A model folder from before bundles (format 1, same fields) is still a valid ``--model``: it
plays both roles. Format 3 added the text recognizer: its folder (``OUT/recognizer``, its own manifest,
``RecognizerManifest``) named by the index's ``models.recognizer``; a bundle of format 2 (or a single
folder) has none, and loads for detection without reading. The format is documented in the README
("Manifest format"); bump ``FORMAT_VERSION`` on any incompatible change. The recognizer's manifest is
``edge.models.recognizer_manifest``. Loading is strict: a missing
or mistyped field is refused with its path in the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edge.config.paths import write_replacing
from edge.config.typed import SchemaError, from_dict
from edge.models import variants as registry

if TYPE_CHECKING:
    from edge.models.recognizer_manifest import RecognizerVariant

FORMAT_VERSION = 3  # the bundle index and the recognizer's manifest (3 added the recognizer)
# A detector folder's manifest has had the same fields since 1 (2 added the bundle index beside it):
# written as 2, so that older craft-edge versions still read a new converter's detector folders.
MODEL_FORMAT_VERSION = 2
MODEL_VERSIONS = (1, 2, 3)
INDEX_VERSIONS = (2, FORMAT_VERSION)  # a format 2 index names no recognizer
MANIFEST_NAME = "manifest.json"
T = TypeVar("T")


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
    name: str  # one of edge.models.variants.NAMES
    file: str  # relative to the manifest's folder
    sha256: str
    bytes: int
    target: str  # one of edge.models.variants.TARGETS: the backend that runs it
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
        write_replacing(path, self.to_json().encode())  # a reload reading it meanwhile sees the old or the new
        return path


def file_sha256(path: Path) -> str:
    """The hex sha256 the manifest records for a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except (ValueError, RecursionError) as exc:  # a number past Python's digit limit, nesting past its depth
        raise ManifestError(f"{where}: not JSON this craft-edge reads ({' '.join(str(exc).split())})") from exc


def _is_index(data: Any) -> bool:
    """A bundle index names its folders under ``models``; a model folder's manifest lists ``variants``."""
    return isinstance(data, dict) and "models" in data and "variants" not in data


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:  # a damaged card: a restart cannot fix it either
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start]:#04x})") from exc


def parse_manifest(text: str, where: str = MANIFEST_NAME) -> Manifest:
    data = parse_json(text, where)
    if isinstance(data, dict) and "charset" in data:
        raise ManifestError(f"{where}: the text recognizer's manifest, not a detector's; give the bundle or a "
                            "detector folder")
    if _is_index(data):
        models = data["models"]
        named = (", ".join(f"{role} {name}" for role, name in models.items() if name is not None)
                 if isinstance(models, dict) else "?")
        raise ManifestError(f"{where}: the index of a model bundle ({named}), not a model folder's manifest; "
                            "give one of the folders it names")
    manifest = typed(Manifest, data, where, MODEL_VERSIONS, "")
    check_variants(manifest.variants, where)
    return manifest


def typed(kind: type[T], data: Any, where: str, versions: tuple[int, ...], what: str) -> T:
    """``data`` as a ``kind``: refused in one line when its format_version is none of ``versions`` (``what``
    names the kind of file in that line) or it does not fit the dataclass."""
    if isinstance(data, dict) and data.get("format_version") not in versions:
        raise ManifestError(f"{where}: format_version {data.get('format_version')!r}, this craft-edge reads "
                            f"{what}{', '.join(map(str, versions))}")
    try:
        return from_dict(kind, data, where)
    except SchemaError as exc:
        raise ManifestError(str(exc)) from exc


def check_variants(variants: Sequence[Variant | RecognizerVariant], where: str) -> None:
    """Each variant's target is known and its file is a name in the manifest's folder (not a path out of it)."""
    for index, variant in enumerate(variants):
        if variant.target not in registry.TARGETS:
            raise ManifestError(
                f"{where}.variants[{index}].target: {variant.target!r} is not one of {registry.TARGETS}")
        if variant.file in ("", ".", "..") or Path(variant.file).name != variant.file:
            raise ManifestError(f"{where}.variants[{index}].file: {variant.file!r} is not the name of a file "
                                "beside the manifest")


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    return parse_manifest(read_text(path), str(path))


# -- bundles ----------------------------------------------------------------------------------------
@dataclass
class Roles:
    """Which model folder (a name beside the index) plays which role; one folder may play both."""

    coarse: str  # sees the whole frame, letterboxed (tiling off, and adaptive's first pass)
    tile: str  # sees native-scale tiles (tiling full and adaptive); the Edge TPU's model
    recognizer: str | None = None  # reads the words (format 3); None: the bundle cannot read


ROLES = ("coarse", "tile")  # the detector's roles


@dataclass
class BundleIndex:
    """``OUT/manifest.json`` of a bundle: the folders beside it, by role."""

    format_version: int
    created: str  # UTC ISO-8601
    converter_version: str
    models: Roles

    def write(self, folder: Path) -> Path:
        data = dataclasses.asdict(self)
        if self.models.recognizer is None:  # no recognizer: the key is left out, not null
            del data["models"]["recognizer"]
        path = folder / MANIFEST_NAME
        write_replacing(path, (json.dumps(data, indent=2) + "\n").encode())
        return path


@dataclass(frozen=True)
class ModelFolders:
    """The model folder of each role; the same path twice for a single model folder."""

    coarse: Path
    tile: Path

    @property
    def shared(self) -> bool:
        """One folder plays both roles (one model, loaded once)."""
        return self.coarse == self.tile


def _index(data: Any, where: str) -> BundleIndex:
    return typed(BundleIndex, data, where, INDEX_VERSIONS, "bundle indexes of format ")


def model_folders(path: Path) -> ModelFolders:
    """The coarse and tile model folders of ``path``: a bundle (its index names them) or a single model
    folder (it plays both roles). Only the index is read here; each folder's manifest is read when its
    models are loaded."""
    index_path = path / MANIFEST_NAME
    if not index_path.is_file() and path.is_dir():
        found = sorted(p.name for p in path.iterdir() if (p / MANIFEST_NAME).is_file())
        if found:  # what convert-for-device wrote before bundles
            raise ManifestError(
                f"{path} has no {MANIFEST_NAME} but holds the model folders {', '.join(found)} (an older "
                f"convert-for-device's output, or a conversion that did not finish): give one of them, e.g. "
                f"{path / found[0]}, or convert again")
    data = parse_json(read_text(index_path), str(index_path))
    if not _is_index(data):
        return ModelFolders(path, path)
    index = _index(data, str(index_path))
    folders = {}
    for role in ROLES:
        folders[role] = _named_folder(path, getattr(index.models, role), f"{index_path}.models.{role}")
    return ModelFolders(**folders)


def _named_folder(path: Path, name: str, where: str) -> Path:
    if name in ("", ".", "..") or Path(name).name != name:
        raise ManifestError(f"{where}: {name!r} is not the name of a folder beside the index")
    if not (path / name / MANIFEST_NAME).is_file():
        raise ManifestError(f"{where}: {path / name} has no {MANIFEST_NAME}")
    return path / name


def recognizer_folder(path: Path) -> Path | None:
    """The text recognizer's folder of ``path``: the one a bundle's index names, ``path`` itself when it is
    a recognizer's folder, None when there is none (a format 2 bundle, a detector folder: no reading)."""
    index_path = path / MANIFEST_NAME
    data = parse_json(read_text(index_path), str(index_path))
    if isinstance(data, dict) and "charset" in data:
        return path
    if not _is_index(data):
        return None
    name = _index(data, str(index_path)).models.recognizer
    return None if name is None else _named_folder(path, name, f"{index_path}.models.recognizer")
