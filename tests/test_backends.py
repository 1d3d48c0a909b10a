"""The model side's structure and failure paths: variant registry, backends, fallback and retry.

Only hardware is stood in for (the Edge TPU's sysfs entry and delegate, a made-up NPU); models,
interpreter, manifest and selection are the real ones.
"""

from __future__ import annotations

import dataclasses
import weakref
from pathlib import Path

import numpy as np
import pytest

from converter.tflite_variants import VARIANTS as CONVERTER_VARIANTS
from edge.config.settings import ModelConfig
from edge.models import selection, variants
from edge.models.backends import BACKENDS, BackendContext
from edge.models.backends.cpu import CpuBackend
from edge.models.inference import build_runners
from edge.models.manifest import load_manifest
from edge.models.runtime import find_runtime
from tests.npu_standin import FakeNpuBackend
from tests.test_selection import make_runner, tpu_folder  # noqa: F401  (fixture)
from tests.tpu_standin import StandInRuntime, StandInState, fake_usb_coral

pytestmark = pytest.mark.conversion


def test_one_registry_for_converter_config_and_manifest() -> None:
    assert tuple(k.name for k in variants.VARIANTS if k.graph is not None) == CONVERTER_VARIANTS
    assert dataclasses.fields(ModelConfig)[1].metadata["choices"] == ("auto", *variants.NAMES)
    context = BackendContext(ModelConfig(), find_runtime(), 1)
    backends = [factory(context) for factory in BACKENDS]
    assert {b.target for b in backends} == set(variants.TARGETS)
    assert [b.accelerator for b in backends][-1] is False, "the CPU comes last"
    for kind in variants.VARIANTS:
        if kind.compiled_from is not None:
            assert variants.kind(kind.compiled_from).graph is not None


def test_a_new_backend_is_one_module_plus_one_registration(model_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    import shutil

    shutil.copytree(model_dir, folder)
    manifest = load_manifest(folder)
    manifest.variants.append(dataclasses.replace(manifest.variant("int8"), name="npu-int8", target="npu",
                                                 agreement=None))
    manifest.write(folder)
    monkeypatch.setattr(variants, "TARGETS", (*variants.TARGETS, "npu"))  # the registration, in a test
    now = [0.0]
    FakeNpuBackend.plugged_in = False
    try:
        runner = build_runners(ModelConfig(dir=str(folder), num_threads=1), tmp_path / "state",
                               backends=(FakeNpuBackend.from_context, *BACKENDS), clock=lambda: now[0]).coarse
        assert runner.choice.backend == "cpu" and runner.states["npu"] == "absent"
        FakeNpuBackend.plugged_in = True  # plugged in after start: picked up within retry_seconds
        now[0] = runner.retry_seconds + 1
        scores = runner(np.zeros((*runner.input_hw, 3), np.uint8))
        assert scores.shape[-1] == 2
        assert (runner.choice.variant, runner.choice.backend, runner.states["npu"]) == ("npu-int8", "npu", "active")
    finally:
        FakeNpuBackend.plugged_in = True


def test_bug1_a_returning_tpu_that_fails_to_invoke_does_not_kill_the_frame(tpu_folder: Path,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    state = StandInState()
    now = [0.0]
    runner = make_runner(tpu_folder, tmp_path, state, tpu_present=True, clock=lambda: now[0])
    pixels = np.full((*runner.input_hw, 3), 100, np.uint8)
    state.unplugged = True  # the delegate still loads, but every invoke fails
    runner(pixels)
    now[0] = 31.0  # the retry loads the TPU again; the frame must still come out (on the CPU)
    scores = runner(pixels)
    assert scores.shape[-1] == 2
    assert runner.choice.backend == "cpu" and runner.states["edgetpu"].startswith("failed: Failed to invoke")


def test_bug2_a_cached_choice_that_no_longer_loads_moves_on(tpu_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    first = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    cached = first.choice.variant
    manifest = load_manifest(tpu_folder)
    manifest.variant(cached).input.shape = [1, 480, 640, 3]  # lies about the file; sha256 still matches
    manifest.write(tpu_folder)
    second = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    assert second.choice.variant != cached and second.choice.backend == "cpu"
    assert cached not in second.choice.measured_ms


def test_bug3_candidates_are_measured_one_at_a_time(tpu_folder: Path, tmp_path: Path,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    alive: set[int] = set()
    peak = [0]
    real_load = CpuBackend.load

    def counting_load(self: CpuBackend, model_dir: Path, variant: object) -> object:
        model = real_load(self, model_dir, variant)
        alive.add(id(model))
        peak[0] = max(peak[0], len(alive))
        weakref.finalize(model, alive.discard, id(model))
        return model

    monkeypatch.setattr(CpuBackend, "load", counting_load)
    runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    assert len(runner.choice.measured_ms) == 5
    assert peak[0] == 1


def test_bug4_a_tpu_failing_mid_run_measures_nothing(tpu_folder: Path, tmp_path: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    state = StandInState()
    runner = make_runner(tpu_folder, tmp_path, state, tpu_present=True)  # no cache yet
    assert runner.choice.backend == "edgetpu"

    def no_measuring(*_: object) -> float:
        raise AssertionError("measured on the inference thread")

    monkeypatch.setattr(selection, "measure_ms", no_measuring)
    state.unplugged = True
    runner(np.full((*runner.input_hw, 3), 100, np.uint8))
    assert runner.choice.backend == "cpu"


def test_bug5_a_coral_plugged_in_after_start_is_used(tpu_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    now = [0.0]
    runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False, clock=lambda: now[0])
    assert runner.choice.backend == "cpu" and runner.states["edgetpu"] == "absent"
    fake_usb_coral(tmp_path / "no-sysfs")  # the folder make_runner scans when no TPU was present
    pixels = np.full((*runner.input_hw, 3), 100, np.uint8)
    now[0] = 29.0
    runner(pixels)
    assert runner.choice.backend == "cpu", "retried before retry_seconds"
    now[0] = 30.0
    runner(pixels)
    assert runner.choice.backend == "edgetpu" and runner.states["edgetpu"] == "active"


def test_bug6_no_recorded_agreement_does_not_pass_the_floor(tpu_folder: Path, tmp_path: Path) -> None:  # noqa: F811
    manifest = load_manifest(tpu_folder)
    manifest.variant("fp16").agreement = None
    manifest.write(tpu_folder)
    runner = make_runner(tpu_folder, tmp_path, StandInState(), tpu_present=False)
    assert "fp16" not in runner.choice.measured_ms and len(runner.choice.measured_ms) == 4


def test_stand_in_runtime_is_the_real_one_for_cpu(tpu_folder: Path) -> None:  # noqa: F811
    runtime = StandInRuntime(find_runtime(), StandInState())
    assert runtime.name == find_runtime().name
