"""Which labelled photos ``craft-edge eval`` and ``bench/tiling.py`` measure on when none are given.

Every accuracy figure in the README and docs/benchmarks.md comes from one set: 200 ICDAR 2015
training photos (1,065 words) kept beside a checkout in ``../shared/eval-ic15train`` (research use
only, so never shipped). One word there is 0.1 point; on the project's own ``data/smalltext`` (10
frames, 128 words) it is almost 1, so that set is the fallback, not the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout (or site-packages, where nothing is found)
BENCHMARK = Path("shared") / "eval-ic15train"
FALLBACK = CHECKOUT / "data" / "smalltext"


@dataclass(frozen=True)
class LabelledSet:
    name: str
    images: Path
    truth: Path


def default_set(working_dir: Path) -> LabelledSet | None:
    """The benchmark beside the working directory or the checkout, else the project's smalltext frames
    (a checkout only); None when neither is there (an installed package: give --images and --gt)."""
    for base in (working_dir, CHECKOUT):
        folder = base.parent / BENCHMARK
        if (folder / "images").is_dir() and (folder / "gt").is_dir():
            return LabelledSet(BENCHMARK.name, folder / "images", folder / "gt")
    if FALLBACK.is_dir():
        return LabelledSet(f"data/{FALLBACK.name}", FALLBACK, FALLBACK)
    return None


@dataclass(frozen=True)
class ModeFigures:
    """One tiling mode on the benchmark (int8, x86, 2 threads), from the run docs/benchmarks.md's
    "Tiling modes" shows."""

    hmean: float
    native_hmean: float  # one pass over each photo at its own size, the same run
    time_vs_native: float  # the mode's model time over the native pass's

    def describe(self) -> str:
        given_up = 100 * (self.native_hmean - self.hmean)
        against = (f"{given_up:.1f} points under" if given_up >= 0.05 else
                   f"{-given_up:.1f} points over" if given_up <= -0.05 else "the same as")
        return (f"on the benchmark H-mean {self.hmean:.3f}, {against} one pass at the photo's own size "
                f"({self.native_hmean:.3f}), at {self.time_vs_native:.2f}x its model time")


# tests/test_benchmark_figures.py keeps these equal to docs/benchmarks.md's tiling table.
MODE_FIGURES = {
    "off": ModeFigures(0.582, 0.845, 0.25),
    "full": ModeFigures(0.854, 0.845, 1.49),
    "adaptive": ModeFigures(0.846, 0.845, 0.50),
}
