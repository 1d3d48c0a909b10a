"""The figures ``craft-edge frame`` quotes are the ones docs/benchmarks.md shows, from the same run."""

from __future__ import annotations

import re
from pathlib import Path

from edge.detection.benchmark import MODE_FIGURES

BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def tiling_rows() -> dict[str, list[str]]:
    """bench/tiling.py's accuracy table as docs/benchmarks.md holds it (the clip's table after it starts
    with the same names): mode -> its columns."""
    section = BENCHMARKS.read_text().split("## Tiling modes", 1)[1].split("```")[1]
    rows = {}
    for line in section.splitlines():
        fields = line.split()
        if fields and fields[0] in ("native", *MODE_FIGURES) and re.fullmatch(r"[0-9.]+", fields[1]):
            rows.setdefault(fields[0], fields)
    return rows


def test_mode_figures_are_the_benchmark_run() -> None:
    rows = tiling_rows()
    assert set(rows) == {"native", *MODE_FIGURES}
    for mode, figures in MODE_FIGURES.items():
        hmean, native_hmean, vs_native = rows[mode][1], rows["native"][1], rows[mode][-2]
        assert f"{figures.hmean:.3f}" == hmean, mode
        assert f"{figures.native_hmean:.3f}" == native_hmean, mode
        assert f"{figures.time_vs_native:.2f}x" == vs_native, mode
