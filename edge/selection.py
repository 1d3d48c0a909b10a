"""Choosing the best model for this hardware, from a converter output folder.

Rules, in order:
1. ``prefer`` is ``auto`` or ``edgetpu``, an ``edgetpu`` variant exists, a TPU is present and its
   delegate loads: the Edge TPU variant.
2. ``prefer`` names a CPU variant: that variant.
3. ``auto`` (or ``edgetpu`` that could not be had): among the CPU variants whose recorded box
   precision and recall against PyTorch reach ``min_agreement``, the fastest on this device.
   It is measured once (a few inferences each) and cached per model folder + hardware + runtime,
   so later starts skip the measurement.
A variant whose file does not match the manifest's sha256 is refused, and the next rule applies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.backends.cpu import load_cpu
from edge.backends.edgetpu import TpuUnavailable, load_edgetpu
from edge.config import ModelConfig
from edge.hardware import CpuInfo, TpuDevice
from edge.manifest import Manifest, Variant, file_sha256
from edge.runtime import CraftModel, ModelLoadError, Runtime

log = logging.getLogger(__name__)

CACHE_FILE = "model-choice.json"
MEASURE_RUNS = 3


class NoUsableModel(RuntimeError):
    """No variant in the model folder can be used on this device."""


@dataclass
class Choice:
    variant: str
    backend: str  # "cpu" or "edgetpu"
    reason: str
    measured_ms: dict[str, float] = field(default_factory=dict)


def file_matches(model_dir: Path, variant: Variant) -> bool:
    try:
        return file_sha256(model_dir / variant.file) == variant.sha256
    except OSError:
        return False


def measure_ms(model: CraftModel, runs: int = MEASURE_RUNS) -> float:
    pixels = np.full((*model.input_hw, 3), 128, dtype=np.uint8)
    model(pixels)  # warm-up: first inference allocates and packs weights
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        model(pixels)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def check_shapes(variant: Variant, model: CraftModel) -> None:
    """A manifest that lies about a file's tensors is refused for that variant."""
    for kind, recorded, actual in (("input", variant.input.shape, model.input.shape),
                                   ("output", variant.output.shape, model.output.shape)):
        if list(recorded) != list(actual):
            raise NoUsableModel(f"{variant.name}: the manifest says {kind} {list(recorded)} but the file takes "
                                f"{list(actual)}")


class ModelSelector:
    """Applies the rules above for one model folder on this device."""

    def __init__(self, model_dir: Path, manifest: Manifest, config: ModelConfig, runtime: Runtime,
                 cpu: CpuInfo, threads: int, cache_dir: Path) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.config = config
        self.runtime = runtime
        self.cpu = cpu
        self.threads = threads
        self.cache_path = cache_dir / CACHE_FILE
        self._verified: dict[str, bool] = {}

    # -- integrity -------------------------------------------------------------------------
    def verified(self, variant: Variant) -> bool:
        if variant.name not in self._verified:
            ok = file_matches(self.model_dir, variant)
            if not ok:
                log.error("refusing variant %s: %s does not match its manifest sha256", variant.name, variant.file)
            self._verified[variant.name] = ok
        return self._verified[variant.name]

    # -- Edge TPU --------------------------------------------------------------------------
    def edgetpu_variant(self) -> Variant | None:
        return next((v for v in self.manifest.variants if v.target == "edgetpu"), None)

    def load_tpu(self, tpus: list[TpuDevice]) -> tuple[CraftModel, Choice]:
        """The Edge TPU model, or ``TpuUnavailable`` saying why not."""
        if self.config.prefer not in ("auto", "edgetpu"):
            raise TpuUnavailable(f"model.prefer is {self.config.prefer}")
        variant = self.edgetpu_variant()
        if variant is None:
            raise TpuUnavailable("the model folder has no edgetpu variant (compile int8-tpu with edgetpu_compiler)")
        if not self.verified(variant):
            raise TpuUnavailable(f"{variant.file} does not match its manifest sha256")
        model = load_edgetpu(self.model_dir, variant, self.runtime, tpus, self.config.edgetpu.device)
        return model, Choice(variant.name, "edgetpu", f"Edge TPU present ({tpus[0].state}) and its delegate loaded")

    # -- CPU -------------------------------------------------------------------------------
    def cpu_candidates(self) -> list[Variant]:
        floor = self.config.min_agreement
        candidates = []
        for variant in self.manifest.variants:
            if variant.target != "cpu":
                continue
            agreement = variant.agreement
            if agreement is not None and min(agreement.box_precision, agreement.box_recall) < floor:
                log.info("skipping %s: agreement with PyTorch under %.2f", variant.name, floor)
                continue
            if self.verified(variant):
                candidates.append(variant)
        return candidates

    def load_cpu_choice(self) -> tuple[CraftModel, Choice]:
        """The CPU model by the rules above; ``NoUsableModel`` if none can be used."""
        forced = self.config.prefer not in ("auto", "edgetpu")
        if forced:
            variant = next((v for v in self.manifest.variants if v.name == self.config.prefer), None)
            if variant is None or variant.target != "cpu":
                raise NoUsableModel(f"model.prefer is {self.config.prefer!r} but the manifest has no such CPU variant")
            if not self.verified(variant):
                raise NoUsableModel(f"model.prefer is {variant.name!r} but {variant.file} does not match its sha256")
            return self.load_variant(variant), Choice(variant.name, "cpu", "forced by model.prefer")
        candidates = self.cpu_candidates()
        if not candidates:
            raise NoUsableModel(
                f"no usable CPU variant in {self.model_dir} (missing, altered or below the agreement floor)"
            )
        cached = self._cached_choice()
        names = {v.name: v for v in candidates}
        if cached is not None and cached.variant in names:
            return self.load_variant(names[cached.variant]), cached
        return self._measure(candidates)

    def load_variant(self, variant: Variant) -> CraftModel:
        try:
            model = load_cpu(self.model_dir, variant, self.runtime, self.threads)
        except ModelLoadError as exc:
            raise NoUsableModel(str(exc)) from exc
        check_shapes(variant, model)
        return model

    def _measure(self, candidates: list[Variant]) -> tuple[CraftModel, Choice]:
        measured: dict[str, float] = {}
        models: dict[str, CraftModel] = {}
        for variant in candidates:
            try:
                model = self.load_variant(variant)
            except NoUsableModel as exc:
                log.error("skipping %s: %s", variant.name, exc)
                continue
            measured[variant.name] = round(measure_ms(model), 2)
            models[variant.name] = model
        if not measured:
            raise NoUsableModel(f"no CPU variant in {self.model_dir} could be loaded")
        best = min(measured, key=measured.__getitem__)
        summary = ", ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(measured.items(), key=lambda kv: kv[1]))
        choice = Choice(best, "cpu", f"fastest measured on this device: {summary}", measured)
        self._store_choice(choice)
        return models[best], choice

    # -- cache -----------------------------------------------------------------------------
    def cache_key(self) -> str:
        parts = [
            str(self.model_dir.resolve()), self.manifest.source_sha256, self.manifest.created,
            self.cpu.describe(), self.runtime.describe(), f"threads={self.threads}",
            f"floor={self.config.min_agreement}",
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def _read_cache(self) -> dict:
        try:
            data = json.loads(self.cache_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _cached_choice(self) -> Choice | None:
        entry = self._read_cache().get(self.cache_key())
        if not isinstance(entry, dict):
            return None
        try:
            choice = Choice(**entry)
        except TypeError:
            return None
        choice.reason = f"cached: {choice.reason}"
        return choice

    def _store_choice(self, choice: Choice) -> None:
        cache = self._read_cache()
        cache[self.cache_key()] = asdict(choice)
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(cache, indent=2) + "\n")
            temporary.replace(self.cache_path)
        except OSError as exc:
            log.warning("cannot write the model-choice cache %s (%s); will measure again next start",
                        self.cache_path, exc)
