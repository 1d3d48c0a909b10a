"""Edge TPU discovery from sysfs and /dev, pycoral-style device strings, CPU description."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.models.backends.edgetpu import delegate_options
from edge.models.hardware import DeviceSpecError, cpu_info, find_tpus, parse_device_spec, select_tpu
from tests.tpu_standin import fake_usb_coral


def test_usb_coral_before_and_after_firmware(tmp_path: Path) -> None:
    fresh = find_tpus(fake_usb_coral(tmp_path / "a", product="089a"), tmp_path / "dev")
    assert [(t.kind, t.state) for t in fresh] == [("usb", "usb (firmware not loaded yet)")]
    ready = find_tpus(fake_usb_coral(tmp_path / "b", product="9302"), tmp_path / "dev")
    assert [(t.kind, t.state) for t in ready] == [("usb", "usb")]


def test_pcie_apex_devices_in_index_order(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("apex_10", "apex_2", "apex_0", "apexfoo"):
        (dev / name).touch()
    tpus = find_tpus(tmp_path / "nothing", dev)
    assert [Path(t.path).name for t in tpus] == ["apex_0", "apex_2", "apex_10"]


@pytest.mark.parametrize(("spec", "parsed"), [
    ("", (None, None)), ("usb", ("usb", None)), ("usb:1", ("usb", 1)), ("pci", ("pci", None)),
    ("pci:0", ("pci", 0)), (":2", (None, 2)),
])
def test_device_strings(spec: str, parsed: tuple) -> None:
    assert parse_device_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["gpu", "usb:x", ":", "usb:1:2"])
def test_bad_device_strings(spec: str) -> None:
    with pytest.raises(DeviceSpecError):
        parse_device_spec(spec)


def test_select_by_kind_and_index(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "apex_0").touch()
    tpus = find_tpus(fake_usb_coral(tmp_path / "usb"), dev)
    assert select_tpu(tpus, "").kind == "usb"
    assert select_tpu(tpus, "pci").kind == "pci"
    assert select_tpu(tpus, ":1").kind == "pci"
    assert select_tpu(tpus, "usb:1") is None
    assert delegate_options("usb:0") == {"device": "usb:0"} and delegate_options("") == {}


def test_cpu_description_from_device_tree(tmp_path: Path) -> None:
    (tmp_path / "device-tree").mkdir()
    (tmp_path / "device-tree" / "model").write_text("Raspberry Pi 5 Model B Rev 1.0\x00")
    info = cpu_info(tmp_path, cores=4)
    assert info.model == "Raspberry Pi 5 Model B Rev 1.0" and info.cores == 4
    assert "Raspberry Pi 5" in info.describe()
