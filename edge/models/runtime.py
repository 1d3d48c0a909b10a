"""TFLite interpreter: which runtime, loading a model (optionally with a delegate), running it.

Runtimes are tried in this order: ``ai_edge_litert`` (maintained; runs int8 and dynamic-range
models on XNNPACK), ``tflite_runtime`` (frozen at 2.14, numpy < 2, int8 not on XNNPACK, so about
5x slower on int8 here), and ``tensorflow.lite`` (a workstation fallback; never required).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# (name reported in logs and stats = its PyPI distribution, module holding Interpreter and load_delegate)
RUNTIME_MODULES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)


class RuntimeMissing(RuntimeError):
    """No TFLite interpreter package is installed."""


class ModelLoadError(RuntimeError):
    """A model file could not be loaded or has an unexpected signature."""


@dataclass(frozen=True)
class Runtime:
    name: str
    module: Any

    def interpreter(self, model_path: Path, num_threads: int, delegates: list | None = None) -> Any:
        return self.module.Interpreter(
            model_path=str(model_path), num_threads=num_threads, experimental_delegates=delegates or None
        )

    def load_delegate(self, library: str, options: dict | None = None) -> Any:
        return self.module.load_delegate(library, options or {})

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def describe(self) -> str:
        return f"{self.name} {self.version}"


def find_runtime(preferred: str | None = None) -> Runtime:
    """The first importable runtime (or ``preferred``, by its reported name)."""
    candidates = [entry for entry in RUNTIME_MODULES if preferred in (None, entry[0])]
    if not candidates:
        names = ", ".join(name for name, _ in RUNTIME_MODULES)
        raise RuntimeMissing(f"unknown runtime {preferred!r}; known: {names}")
    for name, module_name in candidates:
        try:
            return Runtime(name=name, module=importlib.import_module(module_name))
        except ImportError:
            continue
    raise RuntimeMissing(
        "no TFLite runtime found: pip install ai-edge-litert (or tflite-runtime on numpy < 2)"
    )


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and quantisation of one model input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return np.issubdtype(self.dtype, np.integer) and self.scale > 0

    @classmethod
    def from_details(cls, details: dict) -> TensorSpec:
        scale, zero_point = details.get("quantization", (0.0, 0))
        return cls(
            name=details["name"],
            shape=tuple(int(v) for v in details["shape"]),
            dtype=np.dtype(details["dtype"]),
            scale=float(scale),
            zero_point=int(zero_point),
        )


def quantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float (or pixel) values -> the tensor's dtype, using its scale and zero point."""
    if not spec.quantized:
        return values.astype(spec.dtype)
    info = np.iinfo(spec.dtype)
    return np.clip(np.round(values / spec.scale + spec.zero_point), info.min, info.max).astype(spec.dtype)


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if not spec.quantized:
        return values.astype(np.float32)
    return (values.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)


class CraftModel:
    """A converted CRAFT model: (H, W, 3) uint8 RGB pixels in, (H/2, W/2, 2) float scores out.

    The output holding the scores is chosen by shape (NHWC, 2 channels), not by name or
    position, because converters name and order outputs differently.
    """

    def __init__(self, interpreter: Any) -> None:
        self._interpreter = interpreter
        interpreter.allocate_tensors()
        inputs = interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][3] != 3:
            raise ModelLoadError(f"expected one NHWC RGB input, found {[list(d['shape']) for d in inputs]}")
        self.input = TensorSpec.from_details(inputs[0])
        outputs = [d for d in interpreter.get_output_details() if len(d["shape"]) == 4 and d["shape"][3] == 2]
        if len(outputs) != 1:
            shapes = [list(d["shape"]) for d in interpreter.get_output_details()]
            raise ModelLoadError(f"expected one (1, H, W, 2) score output, found {shapes}")
        self.output = TensorSpec.from_details(outputs[0])
        self._input_index = inputs[0]["index"]
        self._output_index = outputs[0]["index"]

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.input.shape[1], self.input.shape[2]

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.shape != self.input.shape[1:]:
            raise ValueError(f"pixels are {pixels.shape}, the model takes {self.input.shape[1:]}")
        self._interpreter.set_tensor(self._input_index, quantize(pixels[None].astype(np.float32), self.input))
        self._interpreter.invoke()
        return dequantize(self._interpreter.get_tensor(self._output_index)[0], self.output)


def load_model(path: Path, runtime: Runtime, num_threads: int, delegates: list | None = None) -> CraftModel:
    try:
        interpreter = runtime.interpreter(path, num_threads, delegates)
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{path}: cannot load ({exc})") from exc
    try:
        return CraftModel(interpreter)
    except (ModelLoadError, RuntimeError, ValueError) as exc:
        # allocate_tensors raises RuntimeError when a delegate cannot prepare the graph (libedgetpu:
        # "failed to prepare"); it is a model that does not load, like any other.
        raise ModelLoadError(f"{path}: {exc}") from exc
