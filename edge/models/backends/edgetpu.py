"""Edge TPU backend: the compiled variant through ``libedgetpu.so.1``, loaded without pycoral.

pycoral's ``make_interpreter`` does the same: ``load_delegate('libedgetpu.so.1', {'device': ...})``
and an interpreter with that delegate. pycoral is therefore never required. Devices are found in
sysfs and /dev (``edge.models.hardware``), so a Coral plugged in later is seen at the next retry.

The compiled model comes from ``edgetpu_compiler``, which exists only for x86-64 Debian/Ubuntu:
its command line is defined here, where both the converter (which runs it when installed) and
``craft-edge probe`` (which prints it) find it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge.models import variants
from edge.models.backends.base import BackendContext, BackendUnavailable, ScoreModel
from edge.models.hardware import EDGETPU_LIBRARY, DeviceSpecError, TpuDevice, find_tpus, select_tpu
from edge.models.manifest import Manifest, Variant
from edge.models.runtime import ModelLoadError, Runtime, load_model

COMPILER = "edgetpu_compiler"
TARGET = "edgetpu"
COMPILED_FROM = variants.kind(TARGET).compiled_from  # int8-tpu


def compile_command(model: Path, out_dir: Path) -> list[str]:
    """``edgetpu_compiler`` on ``model``, writing ``<stem>_edgetpu.tflite`` and its log into ``out_dir``."""
    return [COMPILER, "-s", "-o", str(out_dir), str(model)]


def size_notes(manifest: Manifest) -> list[str]:
    """The converter's size checks of a folder's int8-tpu model: its largest activation against what
    was reported to compile, its parameters against the on-chip cache (absent before format 2)."""
    source = next((v for v in manifest.variants if v.name == COMPILED_FROM), None)
    recorded = (source.edgetpu if source else None) or {}
    checks = [recorded.get(key) for key in ("activation", "parameters")]
    return [check["message"] for check in checks if isinstance(check, dict) and isinstance(check.get("message"), str)]


def compile_note(folder: Path, manifest: Manifest) -> str | None:
    """The folder's compiled model, or the command that makes it (None without an int8-tpu model)."""
    compiled = next((v for v in manifest.variants if v.target == TARGET), None)
    if compiled is not None:
        return f"compiled: {compiled.file}"
    source = next((v for v in manifest.variants if v.name == COMPILED_FROM), None)
    if source is None:
        return None
    command = " ".join(compile_command(folder / source.file, folder))
    return f"not compiled; on an x86-64 Debian/Ubuntu machine with {COMPILER}, run: {command}"


def delegate_options(device_spec: str) -> dict[str, str]:
    return {"device": device_spec} if device_spec else {}


class EdgeTpuBackend:
    name = TARGET
    target = TARGET
    accelerator = True

    def __init__(self, runtime: Runtime, device_spec: str = "",
                 find: Callable[[], list[TpuDevice]] = find_tpus) -> None:
        self.runtime = runtime
        self.device_spec = device_spec
        self.find = find  # replaced in tests by a scan of a stand-in sysfs tree

    @classmethod
    def from_context(cls, context: BackendContext) -> EdgeTpuBackend:
        return cls(context.runtime, context.config.edgetpu.device)

    def _device(self) -> TpuDevice:
        tpus = self.find()
        if not tpus:
            raise BackendUnavailable("absent")
        try:
            device = select_tpu(tpus, self.device_spec)
        except DeviceSpecError as exc:
            raise BackendUnavailable(f"unavailable: {exc}") from exc
        if device is None:
            raise BackendUnavailable(f"unavailable: no Edge TPU matching {self.device_spec!r} found "
                                     f"({len(tpus)} present)")
        return device

    def unavailable_reason(self) -> str | None:
        """``absent`` when no Coral is plugged in, else ``unavailable: ...`` or None."""
        try:
            self._device()
        except BackendUnavailable as exc:
            return str(exc)
        return None

    def load(self, model_dir: Path, variant: Variant) -> ScoreModel:
        device = self._device()
        try:
            delegate = self.runtime.load_delegate(EDGETPU_LIBRARY, delegate_options(self.device_spec))
        except (ValueError, OSError, RuntimeError) as exc:
            raise BackendUnavailable(f"{EDGETPU_LIBRARY} did not load for {device.state} ({exc})") from exc
        try:
            return load_model(model_dir / variant.file, self.runtime, 1, [delegate])
        except ModelLoadError as exc:
            raise BackendUnavailable(f"{variant.file} did not load on the Edge TPU ({exc})") from exc

    def describe(self) -> str:
        return f"{EDGETPU_LIBRARY} via {self.runtime.describe()}"
