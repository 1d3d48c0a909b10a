"""PyTorch -> ONNX: a valid graph that reproduces PyTorch within the tutorial's tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from converter.calibration import model_inputs, read_frames
from converter.model import load_pixel_model
from converter.onnx_export import ParityError, check_parity, export_onnx
from tests.conftest import SAMPLES


def test_export_is_valid_and_matches_pytorch(weights: Path, tmp_path: Path) -> None:
    model = load_pixel_model(weights)
    path = export_onnx(model, (96, 128), tmp_path / "craft.onnx")
    graph = onnx.load(str(path))
    assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 96, 128]
    assert [d.dim_value for d in graph.graph.output[0].type.tensor_type.shape.dim] == [1, 2, 48, 64]
    inputs = model_inputs(read_frames(SAMPLES, "validation")[:2], (96, 128))
    parity = check_parity(model, path, inputs, threads=2)
    assert parity.images == 2
    assert parity.max_abs_diff <= 1e-3


def test_parity_check_catches_a_different_model(weights: Path, tmp_path: Path) -> None:
    model = load_pixel_model(weights)
    path = export_onnx(model, (64, 64), tmp_path / "craft.onnx")
    with torch_no_grad():
        model.craft.conv_cls[-1].bias += 0.01  # the PyTorch side drifts from the exported graph
    with pytest.raises(ParityError):
        check_parity(model, path, [np.full((64, 64, 3), 128, dtype=np.uint8)], threads=1)


def torch_no_grad():
    import torch

    return torch.no_grad()
