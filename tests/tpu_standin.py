"""Stand-ins for the Edge TPU (which cannot exist here), behind the real interfaces.

``fake_usb_coral`` writes a sysfs tree that ``edge.models.hardware.find_tpus`` reads like the real one.
``StandInRuntime`` wraps the real TFLite runtime: ``load_delegate('libedgetpu.so.1')`` returns a
token (or raises, like a missing/unplugged TPU), and an interpreter given that token runs the
compiled model's stand-in (the int8-tpu file it was compiled from) on the CPU, and can be told to
fail mid-run like an unplugged TPU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge.models.hardware import EDGETPU_LIBRARY
from edge.models.manifest import load_manifest
from edge.models.runtime import Runtime
from edge.models.selection import file_matches


def fake_usb_coral(root: Path, product: str = "9302") -> Path:
    vendor = "18d1" if product == "9302" else "1a6e"
    device = root / "2-1"
    device.mkdir(parents=True)
    (device / "idVendor").write_text(vendor + "\n")
    (device / "idProduct").write_text(product + "\n")
    other = root / "1-1"
    other.mkdir()
    (other / "idVendor").write_text("046d\n")
    (other / "idProduct").write_text("0825\n")
    return root


class TpuToken:
    """What load_delegate returns."""


class FailingInterpreter:
    """Delegates to a real interpreter until ``unplugged`` is set, then raises like libedgetpu."""

    def __init__(self, real: Any, state: StandInState) -> None:
        self._real = real
        self._state = state

    def invoke(self) -> None:
        if self._state.unplugged:
            raise RuntimeError("Failed to invoke: USB transfer error 2")
        self._real.invoke()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@dataclass
class StandInState:
    delegate_loads: bool = True
    unplugged: bool = False
    delegate_calls: int = 0


class StandInRuntime(Runtime):
    """A real runtime whose Edge TPU delegate is simulated."""

    def __init__(self, real: Runtime, state: StandInState) -> None:
        super().__init__(name=real.name, module=real.module)
        object.__setattr__(self, "state", state)

    def load_delegate(self, library: str, options: dict | None = None) -> Any:
        assert library == EDGETPU_LIBRARY
        self.state.delegate_calls += 1
        if not self.state.delegate_loads:
            raise ValueError(f"Failed to load delegate from {library}")
        return TpuToken()

    def interpreter(self, model_path: Path, num_threads: int, delegates: list | None = None) -> Any:
        if delegates and isinstance(delegates[0], TpuToken):
            cpu_twin = model_path.with_name(model_path.name.replace("_edgetpu", ""))
            return FailingInterpreter(super().interpreter(cpu_twin, num_threads), self.state)
        return super().interpreter(model_path, num_threads)


def folder_with_edgetpu_variant(model_dir: Path, target: Path) -> Path:
    """A copy of a converted folder plus an 'edgetpu' variant, as edgetpu_compiler would add it.

    The stand-in compiled file is a copy of int8-tpu named ``*_int8-tpu_edgetpu.tflite``.
    """
    shutil.copytree(model_dir, target)
    manifest = load_manifest(target)
    source = manifest.variant("int8-tpu")
    compiled = target / source.file.replace(".tflite", "_edgetpu.tflite")
    shutil.copy(target / source.file, compiled)
    manifest.variants.append(replace(source, name="edgetpu", file=compiled.name, target="edgetpu", agreement=None))
    manifest.write(target)
    assert file_matches(target, manifest.variant("edgetpu"))
    return target
