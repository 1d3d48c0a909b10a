"""Our per-component post-processing gives exactly the official algorithm's boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.official_craft import dense_text_maps, official_boxes
from converter.calibration import model_inputs, read_frames
from edge.detection.postprocess import Thresholds, detect_boxes
from edge.models.manifest import load_manifest
from edge.models.runtime import find_runtime, load_model
from tests.conftest import SAMPLES


def assert_same_boxes(region: np.ndarray, affinity: np.ndarray, thresholds: Thresholds) -> int:
    ours = [b.points for b in detect_boxes(region, affinity, thresholds)]
    reference = official_boxes(region, affinity, thresholds.text, thresholds.link, thresholds.low_text)
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-4)
    return len(ours)


@pytest.mark.conversion
def test_on_score_maps_recorded_from_the_model(model_dir: Path) -> None:
    manifest = load_manifest(model_dir)
    model = load_model(model_dir / manifest.variant("fp32").file, find_runtime(), 2)
    total = 0
    for pixels in model_inputs(read_frames(SAMPLES, "samples"), model.input_hw):
        scores = model(pixels)
        for thresholds in (Thresholds(), Thresholds(text=0.5, link=0.3, low_text=0.3)):
            total += assert_same_boxes(scores[..., 0], scores[..., 1], thresholds)
    assert total > 40


def test_on_a_dense_synthetic_page() -> None:
    region, affinity = dense_text_maps(240, 320, rows=12, columns=8)
    assert assert_same_boxes(region, affinity, Thresholds()) > 50


def test_on_noise_with_odd_shapes() -> None:
    rng = np.random.default_rng(3)
    region = rng.random((97, 131)).astype(np.float32) ** 3
    affinity = rng.random((97, 131)).astype(np.float32) ** 3
    assert_same_boxes(region, affinity, Thresholds(text=0.6, link=0.5, low_text=0.3))
