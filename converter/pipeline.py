"""Convert CRAFT for one input size: ONNX, TFLite variants, Edge TPU, verification, manifest."""

from __future__ import annotations

import datetime
import importlib.metadata
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from converter import edgetpu
from converter.agreement import Reference, make_reference, measure_agreement
from converter.calibration import Frame, model_inputs, native_crops
from converter.model import RawPixelCRAFT, load_pixel_model
from converter.onnx_export import check_parity, export_onnx, torch_scores
from converter.report import SHEET_IMAGES, SizeResult
from converter.shared_ranges import calibrate, quantize, with_ranges_of
from converter.tflite_graph import GraphFacts, read_graph
from converter.tflite_variants import QUANTIZED_VARIANTS, STANDARD_VARIANTS, TPU_VARIANT, onnx_to_tf, to_tflite
from edge import __version__
from edge.config.paths import write_replacing
from edge.detection.postprocess import Thresholds
from edge.models.manifest import MODEL_FORMAT_VERSION, Manifest, Quantization, TensorInfo, Variant, file_sha256
from edge.models.runtime import CraftModel, TensorSpec, find_runtime, load_model
from edge.models.variants import VARIANTS as KINDS
from edge.models.variants import VariantKind

# fp32 TFLite must reproduce PyTorch this closely on the score maps, or the run fails.
FP32_MAX_ABS_DIFF = 1e-4
PARITY_IMAGES = 2
TOOLCHAIN_PACKAGES = ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "ai-edge-litert")

class Progress(Protocol):
    """Reports a step; ``advance=False`` updates the description of the step under way."""

    def __call__(self, step: str, advance: bool = True) -> None: ...


class VerificationError(RuntimeError):
    """A converted model does not reproduce PyTorch within the required tolerance."""


@dataclass(frozen=True)
class Request:
    weights: Path
    input_hw: tuple[int, int]
    variants: tuple[str, ...]
    calibration: list[Frame]
    validation: list[Frame]
    threads: int
    thresholds: Thresholds = field(default_factory=Thresholds)
    # int8 variant name -> the calibrated model whose ranges this size takes (converter.shared_ranges);
    # None: this size is the reference, calibrated on crops of the calibration frames at their own scale
    ranges: dict[str, bytes] | None = None


def size_name(input_hw: tuple[int, int]) -> str:
    return f"{input_hw[0]}x{input_hw[1]}"


def utc_now() -> str:
    """The time a manifest records as ``created``."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def toolchain_versions() -> dict[str, str]:
    versions = {}
    for package in TOOLCHAIN_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _tensor_info(spec: TensorSpec) -> TensorInfo:
    quantization = Quantization(spec.scale, spec.zero_point) if spec.quantized else None
    return TensorInfo(name=spec.name, shape=list(spec.shape), dtype=spec.dtype.name, layout="NHWC",
                      quantization=quantization)


def _describe(name: str, path: Path, model: CraftModel, target: str, graph: GraphFacts) -> Variant:
    return Variant(
        name=name, file=path.name, sha256=file_sha256(path), bytes=path.stat().st_size, target=target,
        input=_tensor_info(model.input), output=_tensor_info(model.output),
        op_counts=graph.op_counts, transpose_count=graph.transpose_count,
    )


def _references(model: RawPixelCRAFT, inputs: list[np.ndarray], thresholds: Thresholds) -> list[Reference]:
    return [make_reference(pixels, torch_scores(model, pixels), thresholds) for pixels in inputs]


def compiled_kind(source: str) -> VariantKind:
    """The registry's variant that an external compiler makes from ``source`` (edgetpu from int8-tpu)."""
    return next(kind for kind in KINDS if kind.compiled_from == source)


def step_count(variants: tuple[str, ...]) -> int:
    """How many progress steps ``SizeConverter.run`` reports for these variants."""
    standard = [name for name in STANDARD_VARIANTS if name in variants]
    steps = 3 + (1 + 2 * len(standard) if standard else 0)
    return steps + (4 if TPU_VARIANT in variants else 0)


class SizeConverter:
    """Runs every step for one input size, writing into ``folder``."""

    def __init__(self, request: Request, folder: Path, progress: Progress) -> None:
        self.request = request
        self.folder = folder
        self.progress = progress
        self.runtime = find_runtime()
        self.stem = f"craft_{size_name(request.input_hw)}"
        # a size that takes the reference's ranges is calibrated on one frame only to get its graph's form
        self.calibration = (native_crops(request.calibration, request.input_hw) if request.ranges is None
                            else model_inputs(request.calibration[:1], request.input_hw))
        self.ranges: dict[str, bytes] = {}  # the reference's calibrated int8 models, for the other sizes
        self.validation = model_inputs(request.validation, request.input_hw)
        self.sheet_boxes: dict[str, list[list[np.ndarray]]] = {}

    def run(self) -> SizeResult:
        request = self.request
        self.progress("loading weights")
        model = load_pixel_model(request.weights)
        self.progress("exporting ONNX and checking parity")
        onnx_path = export_onnx(model, request.input_hw, self.folder / f"{self.stem}.onnx")
        parity = check_parity(model, onnx_path, self.validation[:PARITY_IMAGES], request.threads)
        self.progress("running PyTorch on the validation images")
        references = _references(model, self.validation, request.thresholds)
        self.sheet_boxes["pytorch"] = [r.boxes for r in references[:SHEET_IMAGES]]
        variants: list[Variant] = []
        with tempfile.TemporaryDirectory(prefix="craft-edge-") as scratch:
            standard = [name for name in STANDARD_VARIANTS if name in request.variants]
            if standard:
                self.progress("building the NHWC TensorFlow graph (onnx2tf)")
                graph = onnx_to_tf(onnx_path, Path(scratch) / "standard", self.validation)
                variants += [self._variant(graph, name, references) for name in standard]
            if TPU_VARIANT in request.variants:
                variants += self._tpu_variants(Path(scratch), references)
        self._verify(variants)
        manifest = Manifest(
            format_version=MODEL_FORMAT_VERSION,
            created=utc_now(),
            converter_version=__version__,
            source_weights=request.weights.name,
            source_sha256=file_sha256(request.weights),
            input_size=list(request.input_hw),
            input_normalization="in graph: raw RGB 0..255, (x/255 - ImageNet mean) / ImageNet std",
            toolchain={**toolchain_versions(), "runtime": self.runtime.name},
            validation_images=[frame.name for frame in request.validation],
            variants=variants,
            onnx_max_abs_diff=parity.max_abs_diff,
        )
        manifest.write(self.folder)
        return SizeResult(manifest, self.folder, self.validation[:SHEET_IMAGES], self.sheet_boxes)

    def _variant(self, graph: object, name: str, references: list[Reference]) -> Variant:
        self.progress(f"converting {name}")
        path = self.folder / f"{self.stem}_{name}.tflite"
        write_replacing(path, self._flatbuffer(graph, name))  # a running daemon may have the old one mapped
        self.progress(f"measuring {name} against PyTorch")
        model = load_model(path, self.runtime, self.request.threads)
        graph_facts = read_graph(path)
        variant = _describe(name, path, model, "cpu", graph_facts)
        measured = measure_agreement(model, references, self.request.thresholds)
        variant.agreement = measured.agreement
        self.sheet_boxes[name] = measured.boxes[:SHEET_IMAGES]
        if name in QUANTIZED_VARIANTS:
            variant.edgetpu = {"readiness": asdict(edgetpu.check_readiness(graph_facts)),
                               "activation": asdict(edgetpu.largest_activation(graph_facts)),
                               "parameters": asdict(edgetpu.parameter_memory(graph_facts))}
        return variant

    def _flatbuffer(self, graph: object, name: str) -> bytes:
        if name not in QUANTIZED_VARIANTS:
            return to_tflite(graph, name)
        calibrated = calibrate(graph, self.calibration, on_frame=lambda i, n: self.progress(
            f"converting {name}: calibration frame {i}/{n}", advance=False))
        if self.request.ranges is None:
            self.ranges[name] = calibrated
        else:
            calibrated = with_ranges_of(calibrated, self.request.ranges[name])
        return quantize(calibrated)

    def _tpu_variants(self, scratch: Path, references: list[Reference]) -> list[Variant]:
        """int8 with Edge-TPU-friendly upsampling, and its compiled form when the compiler exists."""
        self.progress("building the Edge TPU graph")
        tpu_model = load_pixel_model(self.request.weights, edgetpu_upsample=True)
        onnx_path = export_onnx(tpu_model, self.request.input_hw, scratch / f"{self.stem}_tpu.onnx")
        graph = onnx_to_tf(onnx_path, scratch / "tpu", self.validation)
        variant = self._variant(graph, TPU_VARIANT, references)
        self.progress("compiling for the Edge TPU")
        report = edgetpu.compile_model(self.folder / variant.file, self.folder)
        variant.edgetpu["compiler"] = report.to_dict()
        variants = [variant]
        if report.compiled and report.output_file:
            compiled = self.folder / report.output_file
            graph_facts = read_graph(compiled)
            kind = compiled_kind(TPU_VARIANT)
            variants.append(Variant(
                name=kind.name, file=compiled.name, sha256=file_sha256(compiled), bytes=compiled.stat().st_size,
                target=kind.target, input=variant.input, output=variant.output, op_counts=graph_facts.op_counts,
                transpose_count=graph_facts.transpose_count, edgetpu={"compiler": report.to_dict()},
            ))
        return variants

    def _verify(self, variants: list[Variant]) -> None:
        for variant in variants:
            if variant.name == "fp32" and variant.agreement is not None:
                worst = float(np.max([variant.agreement.region_max_abs_diff,
                                      variant.agreement.affinity_max_abs_diff]))  # NaN if either is
                if not worst <= FP32_MAX_ABS_DIFF:
                    raise VerificationError(
                        f"fp32 TFLite differs from PyTorch by {worst:.2e} on the score maps "
                        f"(limit {FP32_MAX_ABS_DIFF:.0e})"
                    )
