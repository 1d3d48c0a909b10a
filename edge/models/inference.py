"""The model side of the pipeline: the chosen model, and falling back from an accelerator.

At start the CPU choice is settled (measured or read from the cache) and its model stays loaded
even when an accelerator is used, so a later failure neither measures nor loads anything on the
inference thread: the same frame is finished on the CPU at once. The runner keeps running,
reports it, and tries the accelerators again every ``retry_seconds``, also when none was present
at start (a device plugged in later is picked up). An accelerator that fails to load or to run,
however it fails, never takes the CPU path down.

A model bundle has two roles (``edge.models.manifest.model_folders``): the coarse model and the tile model,
each with its own runner, choice and cache entry; when one folder plays both, one runner serves both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config.settings import ModelConfig
from edge.models.backends import BACKENDS, Backend, BackendContext, BackendFactory, BackendUnavailable, ScoreModel
from edge.models.hardware import cpu_info
from edge.models.manifest import load_manifest, model_folders
from edge.models.runtime import Runtime, default_threads, find_runtime
from edge.models.selection import Choice, ModelSelector

log = logging.getLogger(__name__)

# What a failing accelerator raises from load or invoke (libedgetpu: RuntimeError "Failed to invoke").
ACCELERATOR_ERRORS = (BackendUnavailable, RuntimeError, ValueError, OSError)


@dataclass
class Active:
    model: ScoreModel
    choice: Choice
    backend: Backend


class ModelRunner:
    """Callable like a model: (H, W, 3) uint8 pixels -> scores, on the best backend available now."""

    def __init__(self, selector: ModelSelector, backends: Sequence[Backend], runtime: Runtime, retry_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.selector = selector
        self.runtime = runtime  # the TFLite runtime the backends load models with (reported in status)
        self.accelerators = [b for b in backends if b.accelerator]
        self.cpu = next(b for b in backends if not b.accelerator)
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.states = {b.name: "not tried" for b in self.accelerators}  # accelerator name -> state
        self.switches = 0
        self.on_inference: Callable[[], None] = lambda: None  # after each inference (the daemon's watchdog)
        self._active: Active | None = None
        self._cpu: Active | None = None  # the CPU fallback, loaded at start and kept
        self._next_try: float | None = None

    def start(self) -> None:
        """Settle the CPU choice, then use the first accelerator that loads, else the CPU.

        Raises ``NoUsableModel`` if nothing can run.
        """
        model, choice = self.selector.load_cpu_choice(self.cpu)
        self._cpu = Active(model, choice, self.cpu)
        if not self._try_accelerators():
            self._activate(self._cpu)

    @property
    def choice(self) -> Choice | None:
        return self._active.choice if self._active else None

    @property
    def backend(self) -> Backend | None:
        return self._active.backend if self._active else None

    @property
    def input_hw(self) -> tuple[int, int]:
        assert self._active is not None
        return self._active.model.input_hw

    def _retry_wanted(self) -> bool:
        return any(self.selector.why_not(backend) is None for backend in self.accelerators)

    def _try_accelerators(self) -> bool:
        """The first accelerator that is present and loads becomes active; states say why not for the rest."""
        for backend in self.accelerators:
            never = self.selector.why_not(backend)
            if never is not None:
                self.states[backend.name] = never
                continue
            absent = backend.unavailable_reason()
            if absent is not None:
                self.states[backend.name] = absent
                continue
            try:
                model, choice = self.selector.load_accelerator(backend)
            except ACCELERATOR_ERRORS as exc:
                self.states[backend.name] = f"unavailable: {exc}"
                log.warning("%s unavailable, using the CPU: %s", backend.name, exc)
                continue
            self.states[backend.name] = "active"
            self._activate(Active(model, choice, backend))
            return True
        self._next_try = self.clock() + self.retry_seconds if self._retry_wanted() else None
        return False

    def _activate(self, active: Active) -> None:
        self._active = active
        where = "the CPU" if not active.backend.accelerator else active.backend.name
        log.info("model: %s on %s (%s)", active.choice.variant, where, active.choice.reason)

    def _retry_if_due(self) -> None:
        if self._next_try is None or self.clock() < self._next_try or self.backend is not self.cpu:
            return
        if self._try_accelerators():
            self.switches += 1

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self._retry_if_due()
        active = self._active
        assert active is not None
        try:
            scores = active.model(pixels)
            self.on_inference()
            return scores
        except ACCELERATOR_ERRORS as exc:
            if not active.backend.accelerator:
                raise
            log.error("%s failed mid-run (%s); switching to the CPU", active.backend.name, exc)
            self.states[active.backend.name] = f"failed: {exc}"
            self.switches += 1
            assert self._cpu is not None
            self._activate(self._cpu)
            self._next_try = self.clock() + self.retry_seconds
        scores = self._cpu.model(pixels)
        self.on_inference()
        return scores

    def status(self) -> dict:
        """What runs and why, for the status topic."""
        choice = self.choice
        return {
            "backend": choice.backend if choice else None, "variant": choice.variant if choice else None,
            "runtime": self.runtime.describe(), "choice": choice.reason if choice else None,
            "accelerators": dict(self.states),
        }


@dataclass(frozen=True)
class Runners:
    """The runner of each role; ``tile is coarse`` when one model folder plays both."""

    coarse: ModelRunner
    tile: ModelRunner


def _start_runner(model_dir: Path, config: ModelConfig, cache_dir: Path, runtime: Runtime,
                  backends: Sequence[BackendFactory], clock: Callable[[], float]) -> ModelRunner:
    context = BackendContext(config, runtime, config.num_threads or default_threads())
    selector = ModelSelector(model_dir, load_manifest(model_dir), config, cpu_info(), cache_dir)
    runner = ModelRunner(selector, [factory(context) for factory in backends], runtime,
                         config.edgetpu.retry_seconds, clock)
    runner.start()
    return runner


def build_runners(config: ModelConfig, cache_dir: Path, runtime: Runtime | None = None,
                  backends: Sequence[BackendFactory] = BACKENDS,
                  clock: Callable[[], float] = time.monotonic, tile: bool = True) -> Runners:
    """The runners for ``config.dir`` (a bundle or one model folder), started: the daemon's and the CLI's.

    Without ``tile`` (tiling off) the tile model is not loaded: the coarse runner stands in for it.
    ``ManifestError`` for a folder that is neither, ``NoUsableModel`` if a role has nothing that runs.
    """
    runtime = runtime or find_runtime()
    folders = model_folders(Path(config.dir))
    coarse = _start_runner(folders.coarse, config, cache_dir, runtime, backends, clock)
    if folders.shared or not tile:
        return Runners(coarse, coarse)
    return Runners(coarse, _start_runner(folders.tile, config, cache_dir, runtime, backends, clock))
