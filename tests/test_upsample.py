"""The Edge TPU upsampling (nearest 2x + [1,2,1]/4 filter + border gain) equals bilinear 2x."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from converter.model import upsample2x_edgetpu


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 3, 2, 5), (2, 8, 7, 9), (1, 256, 12, 16)])
def test_matches_interpolate_in_fp32(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape) * 4
    expected = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    got = upsample2x_edgetpu(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5


def test_whole_model_with_tpu_upsampling_matches(weights) -> None:
    from converter.model import load_pixel_model

    pixels = torch.rand(1, 3, 128, 160) * 255
    with torch.no_grad():
        reference = load_pixel_model(weights)(pixels)
        tpu = load_pixel_model(weights, edgetpu_upsample=True)(pixels)
    assert (reference - tpu).abs().max().item() <= 1e-4
