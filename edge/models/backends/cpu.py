"""CPU backend: a converted variant on the TFLite interpreter with XNNPACK."""

from __future__ import annotations

from pathlib import Path

from edge.models.backends.base import BackendContext, ScoreModel
from edge.models.manifest import Variant
from edge.models.runtime import Runtime, load_model


class CpuBackend:
    name = "cpu"
    target = "cpu"
    accelerator = False

    def __init__(self, runtime: Runtime, threads: int) -> None:
        self.runtime = runtime
        self.threads = threads

    @classmethod
    def from_context(cls, context: BackendContext) -> CpuBackend:
        return cls(context.runtime, context.threads)

    def unavailable_reason(self) -> str | None:
        return None

    def load(self, model_dir: Path, variant: Variant) -> ScoreModel:
        return load_model(model_dir / variant.file, self.runtime, self.threads)

    def describe(self) -> str:
        return f"{self.runtime.describe()}, threads={self.threads}"
