"""Rolling numbers for the stats topic: frames per second, inference latency, tiles run and skipped, words
read and reused."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

WINDOW = 200


class RollingStats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.frames = 0
        self._inference_ms: deque[float] = deque(maxlen=WINDOW)
        self._done_at: deque[float] = deque(maxlen=WINDOW)
        self.tiles_run = 0  # model inferences since the start (adaptive's coarse pass included)
        self.tiles_skipped = 0  # tiles not run: unchanged (gating) or nothing there (adaptive)
        self.words_read = 0  # crops the recognizer ran on since the start
        self.words_reused = 0  # boxes that kept the last frame's reading (gating: nothing changed around them)

    def record(self, inference_ms: float | None, tiles_run: int = 1, tiles_skipped: int = 0) -> None:
        """One processed frame; ``inference_ms`` None when no model ran (gating: nothing changed)."""
        self.frames += 1
        self.tiles_run += tiles_run
        self.tiles_skipped += tiles_skipped
        if inference_ms is not None:
            self._inference_ms.append(inference_ms)
        self._done_at.append(time.monotonic())

    def record_reading(self, read: int, reused: int) -> None:
        self.words_read += read
        self.words_reused += reused

    def fps(self) -> float:
        if len(self._done_at) < 2:
            return 0.0
        span = self._done_at[-1] - self._done_at[0]
        return (len(self._done_at) - 1) / span if span > 0 else 0.0

    def inference_ms(self) -> dict[str, float]:
        if not self._inference_ms:
            return {"median": 0.0, "p95": 0.0}
        values = np.array(self._inference_ms)
        return {"median": round(float(np.median(values)), 2), "p95": round(float(np.percentile(values, 95)), 2)}

    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 1)
