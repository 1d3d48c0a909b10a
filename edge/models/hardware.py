"""What hardware is here: Coral Edge TPUs (USB and PCIe) and the CPU, found without pycoral.

A USB Coral shows up as 1a6e:089a (Global Unichip) until the runtime first loads its firmware,
then as 18d1:9302 (Google). A PCIe/M.2 Coral is /dev/apex_N (gasket/apex driver). Device strings
follow pycoral's ``make_interpreter(device=...)``: ``usb``, ``usb:N``, ``pci``, ``pci:N``, ``:N``
(N-th TPU of any kind), or empty for the first one found.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

USB_IDS = {("1a6e", "089a"): "usb (firmware not loaded yet)", ("18d1", "9302"): "usb"}
EDGETPU_LIBRARY = "libedgetpu.so.1"
_DEVICE_SPEC = re.compile(r"^(usb|pci)?(?::(\d+))?$")


class DeviceSpecError(ValueError):
    """A device string that is not one of pycoral's forms."""


@dataclass(frozen=True)
class TpuDevice:
    kind: str  # "usb" or "pci"
    path: str  # sysfs device folder, or /dev/apex_N
    state: str  # human-readable, e.g. "usb (firmware not loaded yet)"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip().lower()
    except OSError:
        return ""


def find_tpus(usb_root: Path = Path("/sys/bus/usb/devices"), dev_root: Path = Path("/dev")) -> list[TpuDevice]:
    """Every Coral device present, USB first (sorted by sysfs name), then PCIe by index."""
    found = []
    if usb_root.is_dir():
        for device in sorted(usb_root.iterdir()):
            ids = (_read(device / "idVendor"), _read(device / "idProduct"))
            if ids in USB_IDS:
                found.append(TpuDevice(kind="usb", path=str(device), state=USB_IDS[ids]))
    apex = [path for path in dev_root.glob("apex_*") if path.name.removeprefix("apex_").isdigit()]
    apex.sort(key=lambda path: int(path.name.removeprefix("apex_")))
    found += [TpuDevice(kind="pci", path=str(path), state="pci") for path in apex]
    return found


def parse_device_spec(spec: str) -> tuple[str | None, int | None]:
    """``"usb:1"`` -> ("usb", 1); ``":0"`` -> (None, 0); ``""`` -> (None, None)."""
    match = _DEVICE_SPEC.match(spec.strip())
    if match is None or spec.strip() == ":":
        raise DeviceSpecError(f"Edge TPU device {spec!r} is not one of usb, usb:N, pci, pci:N, :N")
    kind, index = match.group(1), match.group(2)
    return kind, int(index) if index is not None else None


def select_tpu(devices: list[TpuDevice], spec: str) -> TpuDevice | None:
    """The device ``spec`` names among ``devices``, or None if it is not there."""
    kind, index = parse_device_spec(spec)
    candidates = [d for d in devices if kind is None or d.kind == kind]
    position = index or 0
    return candidates[position] if position < len(candidates) else None


@dataclass(frozen=True)
class CpuInfo:
    machine: str  # aarch64, x86_64, ...
    model: str  # "Raspberry Pi 5 Model B Rev 1.0", or the CPU model name
    cores: int

    def describe(self) -> str:
        return f"{self.model} ({self.machine}, {self.cores} cores)"


def cpu_info(proc_root: Path = Path("/proc"), cores: int | None = None) -> CpuInfo:
    board = _read_raw(proc_root / "device-tree" / "model").rstrip("\x00")
    model = board
    if not model:
        cpuinfo = _read_raw(proc_root / "cpuinfo")
        names = re.findall(r"^(?:model name|Model|Hardware)\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE)
        model = names[0].strip() if names else platform.processor() or "unknown CPU"
    count = cores if cores is not None else len(os.sched_getaffinity(0))
    return CpuInfo(machine=platform.machine(), model=model, cores=count)


def _read_raw(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
