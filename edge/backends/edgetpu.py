"""Edge TPU backend: the compiled variant through ``libedgetpu.so.1``, loaded without pycoral.

pycoral's ``make_interpreter`` does the same: ``load_delegate('libedgetpu.so.1', {'device': ...})``
and an interpreter with that delegate. pycoral is therefore never required.
"""

from __future__ import annotations

from pathlib import Path

from edge.hardware import EDGETPU_LIBRARY, DeviceSpecError, TpuDevice, select_tpu
from edge.manifest import Variant
from edge.runtime import CraftModel, ModelLoadError, Runtime, load_model


class TpuUnavailable(RuntimeError):
    """No usable Edge TPU: none present, the delegate does not load, or the model fails on it."""


def delegate_options(device_spec: str) -> dict[str, str]:
    return {"device": device_spec} if device_spec else {}


def load_edgetpu(
    model_dir: Path, variant: Variant, runtime: Runtime, tpus: list[TpuDevice], device_spec: str
) -> CraftModel:
    try:
        device = select_tpu(tpus, device_spec)
    except DeviceSpecError as exc:
        raise TpuUnavailable(str(exc)) from exc
    if device is None:
        wanted = f" matching {device_spec!r}" if device_spec else ""
        raise TpuUnavailable(f"no Edge TPU{wanted} found ({len(tpus)} present)")
    try:
        delegate = runtime.load_delegate(EDGETPU_LIBRARY, delegate_options(device_spec))
    except (ValueError, OSError, RuntimeError) as exc:
        raise TpuUnavailable(f"{EDGETPU_LIBRARY} did not load for {device.state} ({exc})") from exc
    try:
        model = load_model(model_dir / variant.file, runtime, 1, [delegate])
    except ModelLoadError as exc:
        raise TpuUnavailable(f"{variant.file} did not load on the Edge TPU ({exc})") from exc
    if list(model.input.shape) != list(variant.input.shape):
        raise TpuUnavailable(f"the manifest says input {variant.input.shape} but {variant.file} takes "
                             f"{list(model.input.shape)}")
    return model
