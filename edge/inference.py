"""The model side of the pipeline: the chosen model, and falling back from the Edge TPU.

If the Edge TPU is chosen and later fails (unplugged, overheated, delegate error), the runner
switches to the best CPU variant at once, keeps running, reports it, and tries the TPU again
every ``retry_seconds``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from edge.backends.edgetpu import TpuUnavailable
from edge.hardware import TpuDevice
from edge.runtime import CraftModel
from edge.selection import Choice, ModelSelector

log = logging.getLogger(__name__)


class ModelRunner:
    def __init__(self, selector: ModelSelector, find_tpus: Callable[[], list[TpuDevice]], retry_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.selector = selector
        self.find_tpus = find_tpus
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.model: CraftModel | None = None
        self.choice: Choice | None = None
        self.tpu_state = "not tried"
        self.switches = 0
        self._cpu: tuple[CraftModel, Choice] | None = None
        self._next_tpu_try: float | None = None

    def start(self) -> None:
        """Load the best model now; raises ``NoUsableModel`` if nothing can run."""
        if not self._try_tpu():
            self._use_cpu()

    @property
    def input_hw(self) -> tuple[int, int]:
        assert self.model is not None
        return self.model.input_hw

    def _try_tpu(self) -> bool:
        if self.selector.edgetpu_variant() is None:
            self.tpu_state = "not used"
            return False
        if self.selector.config.prefer not in ("auto", "edgetpu"):
            self.tpu_state = "disabled by model.prefer"
            return False
        tpus = self.find_tpus()
        try:
            self.model, self.choice = self.selector.load_tpu(tpus)
        except TpuUnavailable as exc:
            self.tpu_state = f"unavailable: {exc}" if tpus else "absent"
            if tpus:
                log.warning("Edge TPU unavailable, using the CPU: %s", exc)
                self._next_tpu_try = self.clock() + self.retry_seconds
            return False
        self.tpu_state = "active"
        self._next_tpu_try = None
        log.info("model: %s on the Edge TPU (%s)", self.choice.variant, self.choice.reason)
        return True

    def _use_cpu(self) -> None:
        if self._cpu is None:
            self._cpu = self.selector.load_cpu_choice()
        self.model, self.choice = self._cpu
        log.info("model: %s on the CPU (%s)", self.choice.variant, self.choice.reason)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        assert self.model is not None and self.choice is not None
        if self.choice.backend == "edgetpu":
            try:
                return self.model(pixels)
            except (RuntimeError, ValueError, OSError) as exc:
                log.error("Edge TPU failed mid-run (%s); switching to the CPU", exc)
                self.tpu_state = f"failed: {exc}"
                self.switches += 1
                self._next_tpu_try = self.clock() + self.retry_seconds
                self._use_cpu()
        elif self._next_tpu_try is not None and self.clock() >= self._next_tpu_try:
            # Schedule the next attempt first: an unplugged TPU must not be looked for on every frame.
            self._next_tpu_try = self.clock() + self.retry_seconds
            if self._try_tpu():
                self.switches += 1
        return self.model(pixels)
