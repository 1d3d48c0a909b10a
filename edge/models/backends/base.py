"""The one interface every inference backend implements, and what backends are built from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.config.settings import ModelConfig
from edge.models.manifest import Variant
from edge.models.runtime import Runtime, TensorSpec


class BackendUnavailable(RuntimeError):
    """A backend cannot run a variant now: its device is absent, its library does not load, or the
    model does not load on it. The runner moves on to the next backend and retries accelerators later."""


class ScoreModel(Protocol):
    """A loaded model: (H, W, 3) uint8 RGB pixels in, (H/2, W/2, 2) float region/affinity scores out."""

    input: TensorSpec
    output: TensorSpec

    @property
    def input_hw(self) -> tuple[int, int]: ...

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


class Backend(Protocol):
    name: str  # reported in payloads and status, e.g. "cpu", "edgetpu"
    target: str  # the manifest target of the variants it runs (edge.models.variants.TARGETS)
    accelerator: bool  # False only for the CPU, the backend that is always there

    def unavailable_reason(self) -> str | None:
        """Why it cannot run now (cheap: no model is loaded), or None when its device is present."""
        ...

    def load(self, model_dir: Path, variant: Variant) -> ScoreModel:
        """Load ``variant`` from ``model_dir``; raises ``BackendUnavailable`` or ``ModelLoadError``."""
        ...

    def describe(self) -> str:
        """What decides its speed (library, version, threads): part of the model-choice cache key."""
        ...


@dataclass(frozen=True)
class BackendContext:
    """What a backend is built from: the model settings, the TFLite runtime, the CPU threads."""

    config: ModelConfig
    runtime: Runtime
    threads: int
