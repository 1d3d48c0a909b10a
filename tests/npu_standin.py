"""A made-up accelerator backend, to show that adding one is this module plus one registration.

It runs the variants whose manifest target is ``npu`` (here: a copy of the int8 file) on the real
TFLite interpreter, and its device can be plugged in and out like a real one.
"""

from __future__ import annotations

from pathlib import Path

from edge.models.backends import BackendContext, BackendUnavailable, ScoreModel
from edge.models.manifest import Variant
from edge.models.runtime import Runtime, load_model


class FakeNpuBackend:
    name = "npu"
    target = "npu"
    accelerator = True
    plugged_in = True  # class-level: the test flips it like a cable

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @classmethod
    def from_context(cls, context: BackendContext) -> FakeNpuBackend:
        return cls(context.runtime)

    def unavailable_reason(self) -> str | None:
        return None if self.plugged_in else "absent"

    def load(self, model_dir: Path, variant: Variant) -> ScoreModel:
        if not self.plugged_in:
            raise BackendUnavailable("absent")
        return load_model(model_dir / variant.file, self.runtime, 1)

    def describe(self) -> str:
        return "fake npu"
