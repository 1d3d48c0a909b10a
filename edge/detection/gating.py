"""Change gating for video: which parts of a frame changed since the model last saw them.

A fixed camera mostly sees the same scene. Each region (a tile's core, or the whole frame when
tiling is off) is compared with the same region of the frame it was last inferred on; only
changed regions need the model. The comparison is on a grey thumbnail (``cell`` x ``cell``
pixels averaged into one, so sensor noise averages out), after removing the region's mean
change over the region's surroundings (so a slow brightness drift is not a change, while a word
filling a small region still is). A region changed when any cell still differs by more than
``threshold`` grey levels: a word appearing in one corner is enough.

Region borders need not fall on cell borders (``model.scale`` below 1, a ``cell`` that does not
divide the tile step), so a cell may straddle two regions. A region is compared on every cell it
overlaps: a change in a strip narrower than a cell at its edge is its change too (the neighbour
that shares the cell runs as well). A cell's reference is updated only when every region it
overlaps has just run, so what one region remembers never hides a change from another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Region = tuple[int, int, int, int]  # top, bottom, left, right in frame pixels ([top, bottom) x [left, right))


@dataclass(frozen=True)
class GateSettings:
    threshold: float = 12.0  # grey levels (0-255) a thumbnail cell must change by, mean change removed
    cell: int = 8  # frame pixels per thumbnail cell, along each axis
    refresh_seconds: float = 60.0  # every region is inferred again at least this often


class ChangeGate:
    """Remembers, per region, the thumbnail of the frame the model last ran on."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self._reference: np.ndarray | None = None

    def thumbnail(self, rgb: np.ndarray) -> np.ndarray:
        cell = self.settings.cell
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        size = (max(1, grey.shape[1] // cell), max(1, grey.shape[0] // cell))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)

    def _cells(self, region: Region) -> tuple[slice, slice]:
        """The thumbnail cells that hold any pixel of ``region`` (at least one cell)."""
        cell = self.settings.cell
        top, bottom, left, right = region
        first_row, first_col = top // cell, left // cell
        return (slice(first_row, max(-(-bottom // cell), first_row + 1)),
                slice(first_col, max(-(-right // cell), first_col + 1)))

    def changed(self, thumbnail: np.ndarray, regions: list[Region],
                surroundings: list[Region] | None = None) -> list[bool]:
        """For each region: did it change since it was last remembered? (All of them, the first time.)

        The brightness drift removed is the median change over the region's ``surroundings`` (a tile's
        whole extent; default: the whole frame)."""
        if self._reference is None or self._reference.shape != thumbnail.shape:
            return [True] * len(regions)
        difference = thumbnail - self._reference
        whole = float(np.median(difference))
        result = []
        for index, region in enumerate(regions):
            rows, cols = self._cells(region)
            if surroundings is None:
                drift = whole
            else:
                around_rows, around_cols = self._cells(surroundings[index])
                drift = float(np.median(difference[around_rows, around_cols]))
            inside = difference[rows, cols]
            result.append(inside.size > 0 and float(np.abs(inside - drift).max()) > self.settings.threshold)
        return result

    def remember(self, thumbnail: np.ndarray, regions: Sequence[Region], others: Sequence[Region] = ()) -> None:
        """The model has just run on ``regions`` of the frame ``thumbnail`` was made from, not on ``others``:
        the cells of ``regions`` that no region of ``others`` overlaps take this frame as their reference."""
        if self._reference is None or self._reference.shape != thumbnail.shape:
            self._reference = thumbnail.copy()
            return
        seen = np.zeros(thumbnail.shape, bool)
        for region in regions:
            seen[self._cells(region)] = True
        for region in others:
            seen[self._cells(region)] = False
        self._reference[seen] = thumbnail[seen]
