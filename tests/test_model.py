"""CRAFT in PyTorch: strict loading of the real checkpoint, clear errors for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from converter.model import CRAFT, CheckpointError, load_craft, load_pixel_model


def test_real_checkpoint_loads_strictly(weights: Path) -> None:
    model = load_craft(weights)
    assert not model.training
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert all(key.startswith("module.") for key in state), "the official checkpoint has DataParallel keys"
    ours = model.state_dict()
    assert set(ours) == {key.removeprefix("module.") for key in state}
    key = "basenet.slice1.0.weight"
    assert torch.equal(ours[key], state["module." + key])


def test_checkpoint_without_module_prefix_loads(weights: Path, tmp_path: Path) -> None:
    official = torch.load(weights, map_location="cpu", weights_only=True)
    state = {key.removeprefix("module."): value for key, value in official.items()}
    path = tmp_path / "plain.pth"
    torch.save(state, path)
    assert torch.equal(load_craft(path).state_dict()["conv_cls.8.bias"], state["conv_cls.8.bias"])


def test_output_shape_is_half_resolution_two_maps(weights: Path) -> None:
    model = load_pixel_model(weights)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 96, 160))
    assert out.shape == (1, 2, 48, 80)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_craft(tmp_path / "nope.pth")


def test_non_checkpoint_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_craft(path)


def test_other_architecture_names_a_few_keys(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_craft(path)
    message = str(info.value)
    assert "not a CRAFT checkpoint" in message
    assert "missing keys: basenet." in message and "more)" in message
    assert "2 unexpected keys: bias, weight" in message
    assert "\n" not in message


def test_wrong_shapes_are_reported(tmp_path: Path) -> None:
    state = CRAFT().state_dict()
    state["conv_cls.8.weight"] = torch.zeros(3, 16, 1, 1)
    path = tmp_path / "reshaped.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"conv_cls.8.weight is \(3, 16, 1, 1\), expected \(2, 16, 1, 1\)"):
        load_craft(path)
