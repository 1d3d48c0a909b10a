"""Model choice rules, with stand-ins only for the Edge TPU and its delegate."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from edge.config.settings import ModelConfig
from edge.models import selection
from edge.models.backends import BackendContext
from edge.models.backends.cpu import CpuBackend
from edge.models.backends.edgetpu import EdgeTpuBackend
from edge.models.hardware import find_tpus
from edge.models.inference import ModelRunner, build_runners
from edge.models.manifest import load_manifest
from edge.models.runtime import find_runtime
from edge.models.selection import NoUsableModel
from tests.tpu_standin import StandInRuntime, StandInState, fake_usb_coral, folder_with_edgetpu_variant

pytestmark = pytest.mark.conversion


@pytest.fixture
def tpu_folder(model_dir: Path, tmp_path: Path) -> Path:
    return folder_with_edgetpu_variant(model_dir, tmp_path / "models")


def make_runner(folder: Path, tmp_path: Path, state: StandInState, tpu_present: bool, prefer: str = "auto",
                clock=None) -> ModelRunner:
    """The real runner and backends; only the TPU's sysfs entry and its delegate are stand-ins."""
    usb = fake_usb_coral(tmp_path / "sysfs") if tpu_present else tmp_path / "no-sysfs"

    def tpu_backend(context: BackendContext) -> EdgeTpuBackend:
        return EdgeTpuBackend(context.runtime, context.config.edgetpu.device,
                              find=lambda: find_tpus(usb, tmp_path / "dev"))

    config = ModelConfig(dir=str(folder), prefer=prefer, num_threads=1)
    config.edgetpu.retry_seconds = 30
    return build_runners(config, tmp_path / "state", StandInRuntime(find_runtime(), state),
                         backends=(tpu_backend, CpuBackend.from_context), clock=clock or time.monotonic).coarse


def test_tpu_present_and_loading_is_chosen(tpu_folder: Path, tmp_path: Path) -> None:
    runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=True)
    assert (runner.choice.variant, runner.choice.backend) == ("edgetpu", "edgetpu")
    assert runner.states["edgetpu"] == "active"
    scores = runner(np.zeros((*runner.input_hw, 3), np.uint8))
    assert scores.shape == (runner.input_hw[0] // 2, runner.input_hw[1] // 2, 2)


def test_tpu_present_but_delegate_failing_falls_back_to_cpu(tpu_folder: Path, tmp_path: Path) -> None:
    state = StandInState(delegate_loads=False)
    runner = make_runner(tpu_folder, tmp_path, state, tpu_present=True)
    assert runner.choice.backend == "cpu"
    assert runner.states["edgetpu"].startswith("unavailable: libedgetpu.so.1 did not load")
    assert state.delegate_calls == 1


def test_no_tpu_means_cpu_without_touching_the_delegate(tpu_folder: Path, tmp_path: Path) -> None:
    state = StandInState()
    runner = make_runner(tpu_folder, tmp_path, state, tpu_present=False)
    assert runner.choice.backend == "cpu" and runner.states["edgetpu"] == "absent"
    assert state.delegate_calls == 0


def test_prefer_forces_a_cpu_variant(tpu_folder: Path, tmp_path: Path) -> None:
    runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=True, prefer="fp16")
    assert (runner.choice.variant, runner.choice.reason) == ("fp16", "forced by model.prefer")
    assert runner.states["edgetpu"] == "disabled by model.prefer"


def test_auto_measures_once_then_reuses_the_cache(tpu_folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    measured = first.choice.measured_ms
    assert set(measured) == {"fp32", "fp16", "dynamic", "int8", "int8-tpu"}
    assert first.choice.variant == min(measured, key=measured.__getitem__)
    assert (tmp_path / "state" / selection.CACHE_FILE).is_file()

    def no_measuring(*_: object) -> float:
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(selection, "measure_ms", no_measuring)
    second = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    assert second.choice.variant == first.choice.variant
    assert second.choice.reason.startswith("cached: fastest measured on this device")


def test_agreement_floor_excludes_variants(tpu_folder: Path, tmp_path: Path) -> None:
    manifest = load_manifest(tpu_folder)
    manifest.variant("int8").agreement.box_recall = 0.5
    manifest.write(tpu_folder)
    runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    assert "int8" not in runner.choice.measured_ms and runner.choice.variant != "int8"


def test_sha256_mismatch_is_refused(tpu_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manifest = load_manifest(tpu_folder)
    for name in ("int8", "edgetpu"):
        path = tpu_folder / manifest.variant(name).file
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=True)
    assert runner.choice.backend == "cpu" and "int8" not in runner.choice.measured_ms
    assert "does not match its manifest sha256" in runner.states["edgetpu"]
    assert "refusing variant int8" in caplog.text


def test_nothing_usable_is_a_clear_error(tpu_folder: Path, tmp_path: Path) -> None:
    for path in tpu_folder.glob("*.tflite"):
        path.write_bytes(b"corrupt")
    with pytest.raises(NoUsableModel, match="no usable CPU variant"):
        make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)


def test_tpu_failing_mid_run_switches_to_cpu_then_retries(tpu_folder: Path, tmp_path: Path) -> None:
    state = StandInState()
    now = [0.0]
    runner = make_runner(tpu_folder, tmp_path, state, tpu_present=True, clock=lambda: now[0])
    pixels = np.full((*runner.input_hw, 3), 100, np.uint8)
    assert runner.choice.backend == "edgetpu"
    state.unplugged = True
    scores = runner(pixels)  # this very frame is still processed, on the CPU
    assert scores.shape[-1] == 2
    assert runner.choice.backend == "cpu" and runner.states["edgetpu"].startswith("failed: Failed to invoke")
    state.unplugged = False
    now[0] = 10.0
    runner(pixels)
    assert runner.choice.backend == "cpu", "retried before retry_seconds"
    now[0] = 31.0
    runner(pixels)
    assert runner.choice.backend == "edgetpu" and runner.states["edgetpu"] == "active"
    assert runner.switches == 2


def test_unplugged_tpu_is_looked_for_every_retry_seconds_not_every_frame(tpu_folder: Path, tmp_path: Path) -> None:
    state = StandInState()
    now = [0.0]
    runner = make_runner(tpu_folder, tmp_path, state, tpu_present=True, clock=lambda: now[0])
    scans = []
    runner.accelerators[0].find = lambda: scans.append(now[0]) or []  # unplugged: the sysfs entry is gone
    pixels = np.full((*runner.input_hw, 3), 100, np.uint8)
    state.unplugged = True
    runner(pixels)  # fails on the TPU, finishes on the CPU
    for step in range(1, 40):  # 40 frames over 78 s
        now[0] = step * 2.0
        runner(pixels)
    assert runner.choice.backend == "cpu" and runner.states["edgetpu"] == "absent"
    assert scans == [30.0, 60.0]  # once per retry_seconds (30 s), not once per frame


def test_forced_missing_variant(tpu_folder: Path, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "state", ignore_errors=True)
    with pytest.raises(NoUsableModel, match=r"model\.prefer is 'int4'"):
        make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False, prefer="int4")
