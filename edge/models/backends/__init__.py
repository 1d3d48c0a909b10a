"""Inference backends: one module each, behind one small interface (``base.Backend``), in one list.

A backend runs the variants of one manifest target: ``cpu`` on the TFLite interpreter (XNNPACK),
``edgetpu`` through the Edge TPU delegate. A backend only probes and loads; choosing a variant is
``edge.models.selection``, and falling back from an accelerator to the CPU and back is ``edge.models.inference``.

``BACKENDS`` is the order in which they are tried: accelerators first, the CPU last. A new
accelerator is one module here (a class with ``from_context`` and the ``Backend`` methods), its
variant in ``edge/models/variants.py``, and one entry in this list.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.models.backends.base import Backend, BackendContext, BackendUnavailable, ScoreModel
from edge.models.backends.cpu import CpuBackend
from edge.models.backends.edgetpu import EdgeTpuBackend

BackendFactory = Callable[[BackendContext], Backend]

BACKENDS: tuple[BackendFactory, ...] = (EdgeTpuBackend.from_context, CpuBackend.from_context)

__all__ = ["BACKENDS", "Backend", "BackendContext", "BackendFactory", "BackendUnavailable", "ScoreModel"]
