"""PyTorch CRAFT -> ONNX, checked with ``onnx.checker`` and against PyTorch with ONNX Runtime.

We use the TorchScript exporter (``dynamo=False``): for this static CNN it gives a clean graph
(batch norms folded into the convs, 68 nodes) and needs no onnxscript.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from converter.model import RawPixelCRAFT

OPSET = 17
INPUT_NAME = "pixels"
OUTPUT_NAME = "scores"
# The tolerance the original CRAFT -> ONNX tutorial asserted with.
PARITY_RTOL, PARITY_ATOL = 1e-3, 1e-5


class ParityError(AssertionError):
    """The exported graph does not reproduce the PyTorch model."""


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    images: int


def torch_scores(model: RawPixelCRAFT, pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H/2, W/2, 2) float32 region/affinity maps, from PyTorch."""
    batch = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])).float()
    with torch.no_grad():
        return model(batch)[0].numpy().transpose(1, 2, 0)


def export_onnx(model: RawPixelCRAFT, input_hw: tuple[int, int], path: Path) -> Path:
    dummy = torch.zeros(1, 3, *input_hw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, dummy, str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            opset_version=OPSET, dynamo=False,
        )
    onnx.checker.check_model(str(path), full_check=True)
    return path


def check_parity(model: RawPixelCRAFT, onnx_path: Path, inputs: list[np.ndarray], threads: int) -> Parity:
    """Run both on ``inputs``; raise ``ParityError`` outside rtol 1e-3 / atol 1e-5."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for pixels in inputs:
        expected = torch_scores(model, pixels)
        feed = {INPUT_NAME: pixels.transpose(2, 0, 1)[None].astype(np.float32)}
        got = session.run([OUTPUT_NAME], feed)[0][0].transpose(1, 2, 0)
        try:
            np.testing.assert_allclose(got, expected, rtol=PARITY_RTOL, atol=PARITY_ATOL, equal_nan=False)
        except AssertionError as exc:
            raise ParityError(f"ONNX output differs from PyTorch beyond rtol {PARITY_RTOL}/atol {PARITY_ATOL}") from exc
        worst = max(worst, float(np.abs(got - expected).max()))
    return Parity(max_abs_diff=worst, images=len(inputs))
