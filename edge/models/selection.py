"""Choosing the best model for this hardware, from a converter output folder.

Rules, in order (``model.prefer`` is ``auto`` or a variant name):
1. Accelerators, in ``edge.models.backends.BACKENDS`` order: the manifest's variant for that backend's
   target, when ``prefer`` is ``auto`` or names that variant, its device is present and it loads.
2. ``prefer`` names a CPU variant: that variant (an error if it cannot be used).
3. Otherwise, among the CPU variants whose recorded box precision and recall against PyTorch reach
   ``min_agreement`` (a variant with no recorded agreement does not, unless the floor is 0), the
   fastest on this device.
   Each is loaded, measured and freed in turn, so only one is in memory at a time; the result is
   cached per model folder + hardware + runtime, so later starts skip the measurement. A cached
   choice that no longer loads is dropped and the others are measured.
A variant whose file does not match the manifest's sha256, or whose tensors are not the shapes the
manifest records, is refused (logged) and the next rule or candidate applies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.config.settings import ModelConfig
from edge.models import variants
from edge.models.backends import Backend, BackendUnavailable, ScoreModel
from edge.models.hardware import CpuInfo
from edge.models.manifest import MANIFEST_NAME, Manifest, Variant, file_sha256
from edge.models.runtime import ModelLoadError
from edge.models.variants import AUTO

log = logging.getLogger(__name__)

CACHE_FILE = "model-choice.json"
MEASURE_RUNS = 3


class NoUsableModel(RuntimeError):
    """No variant in the model folder can be used on this device."""


@dataclass
class Choice:
    variant: str
    backend: str  # the backend's name: "cpu", "edgetpu", ...
    reason: str
    measured_ms: dict[str, float] = field(default_factory=dict)


def file_matches(model_dir: Path, variant: Variant) -> bool:
    try:
        return file_sha256(model_dir / variant.file) == variant.sha256
    except (OSError, ValueError):  # ValueError: a name with a NUL byte
        return False


def manifests_written(folder: Path) -> tuple:
    """When each manifest of a model folder (its index and its models') was last written: models converted
    again into the same folder change it, so a reload loads them instead of keeping the old ones."""
    written = []
    for path in sorted([folder / MANIFEST_NAME, *folder.glob(f"*/{MANIFEST_NAME}")]):
        try:
            written.append((str(path), path.stat().st_mtime_ns))
        except OSError:  # gone while a conversion rewrites the folder, or never there
            continue
    return tuple(written)


def median_ms(run: Callable[[], object], runs: int = MEASURE_RUNS) -> float:
    """Median milliseconds of ``run()`` over ``runs`` calls, after one warm-up call (the first
    inference allocates and packs weights)."""
    run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def measure_ms(model: ScoreModel, runs: int = MEASURE_RUNS) -> float:
    pixels = np.full((*model.input_hw, 3), 128, dtype=np.uint8)
    return median_ms(lambda: model(pixels), runs)


def check_shapes(variant: Variant, model: ScoreModel) -> None:
    """A manifest that lies about a file's tensors is refused for that variant."""
    for kind, recorded, actual in (("input", variant.input.shape, model.input.shape),
                                   ("output", variant.output.shape, model.output.shape)):
        if list(recorded) != list(actual):
            raise NoUsableModel(f"{variant.name}: the manifest says {kind} {list(recorded)} but the file takes "
                                f"{list(actual)}")


class ModelSelector:
    """Applies the rules above for one model folder on this device."""

    def __init__(self, model_dir: Path, manifest: Manifest, config: ModelConfig, cpu: CpuInfo,
                 cache_dir: Path) -> None:
        self.model_dir = model_dir
        self.manifest = manifest
        self.config = config
        self.cpu = cpu
        self.cache_path = cache_dir / CACHE_FILE
        self._verified: dict[str, bool] = {}

    # -- preference and integrity ----------------------------------------------------------
    def allows(self, variant: Variant) -> bool:
        """``model.prefer`` lets this variant run: it is ``auto`` or names the variant."""
        return self.config.prefer in (AUTO, variant.name)

    def forces(self, backend: Backend) -> bool:
        """``model.prefer`` names one of ``backend``'s variants (an unknown name counts as forced: it fails)."""
        if self.config.prefer == AUTO:
            return False
        try:
            return variants.kind(self.config.prefer).target == backend.target
        except KeyError:
            return True

    def verified(self, variant: Variant) -> bool:
        if variant.name not in self._verified:
            ok = file_matches(self.model_dir, variant)
            if not ok:
                log.error("refusing variant %s: %s does not match its manifest sha256", variant.name, variant.file)
            self._verified[variant.name] = ok
        return self._verified[variant.name]

    def load(self, backend: Backend, variant: Variant) -> ScoreModel:
        """``variant`` on ``backend``, its shapes checked; ``NoUsableModel`` saying why if it cannot be used."""
        try:
            model = backend.load(self.model_dir, variant)
        except (ModelLoadError, BackendUnavailable) as exc:
            raise NoUsableModel(str(exc)) from exc
        check_shapes(variant, model)
        return model

    # -- accelerators ----------------------------------------------------------------------
    def accelerator_variant(self, backend: Backend) -> Variant | None:
        return next((v for v in self.manifest.variants if v.target == backend.target), None)

    def why_not(self, backend: Backend) -> str | None:
        """Why an accelerator is never to be tried with this folder and config, or None."""
        variant = self.accelerator_variant(backend)
        if variant is None:
            return "not used"
        if not self.allows(variant):
            return "disabled by model.prefer"
        return None

    def load_accelerator(self, backend: Backend) -> tuple[ScoreModel, Choice]:
        """The accelerator's variant loaded on it, or ``BackendUnavailable`` saying why not."""
        variant = self.accelerator_variant(backend)
        if variant is None or not self.allows(variant):
            raise BackendUnavailable(self.why_not(backend) or "not allowed")
        if not self.verified(variant):
            raise BackendUnavailable(f"{variant.file} does not match its manifest sha256")
        try:
            model = self.load(backend, variant)
        except NoUsableModel as exc:
            raise BackendUnavailable(str(exc)) from exc
        return model, Choice(variant.name, backend.name, f"{backend.name} present and its model loaded")

    # -- CPU -------------------------------------------------------------------------------
    def cpu_candidates(self, backend: Backend) -> list[Variant]:
        floor = self.config.min_agreement
        candidates = []
        for variant in self.manifest.variants:
            if variant.target != backend.target:
                continue
            agreement = variant.agreement
            if agreement is None and floor > 0:  # min_agreement 0 turns the floor off
                log.info("skipping %s: no recorded agreement with PyTorch", variant.name)
                continue
            if agreement is not None and min(agreement.box_precision, agreement.box_recall) < floor:
                log.info("skipping %s: agreement with PyTorch under %.2f", variant.name, floor)
                continue
            if self.verified(variant):
                candidates.append(variant)
        return candidates

    def load_cpu_choice(self, backend: Backend) -> tuple[ScoreModel, Choice]:
        """The CPU model by the rules above; ``NoUsableModel`` if none can be used."""
        if self.forces(backend):
            variant = next((v for v in self.manifest.variants if v.name == self.config.prefer), None)
            if variant is None:
                raise NoUsableModel(f"model.prefer is {self.config.prefer!r} but the manifest has no such CPU variant")
            if not self.verified(variant):
                raise NoUsableModel(f"model.prefer is {variant.name!r} but {variant.file} does not match its sha256")
            return self.load(backend, variant), Choice(variant.name, backend.name, "forced by model.prefer")
        candidates = self.cpu_candidates(backend)
        if not candidates:
            raise NoUsableModel(
                f"no usable CPU variant in {self.model_dir} (missing, altered or below the agreement floor)"
            )
        cached = self._cached_choice(backend)
        by_name = {v.name: v for v in candidates}
        if cached is not None and cached.variant in by_name:
            try:
                return self.load(backend, by_name[cached.variant]), cached
            except NoUsableModel as exc:
                log.error("skipping %s (cached choice): %s", cached.variant, exc)
                candidates.remove(by_name[cached.variant])
        return self._measure(backend, candidates)

    def _measure(self, backend: Backend, candidates: list[Variant]) -> tuple[ScoreModel, Choice]:
        """Load, measure and free each candidate in turn, then load the fastest again."""
        measured: dict[str, float] = {}
        for variant in candidates:
            try:
                model = self.load(backend, variant)
            except NoUsableModel as exc:
                log.error("skipping %s: %s", variant.name, exc)
                continue
            measured[variant.name] = round(measure_ms(model), 2)
            del model  # frees the interpreter and its arena before the next candidate loads
        if not measured:
            raise NoUsableModel(f"no CPU variant in {self.model_dir} could be loaded")
        best = min(measured, key=measured.__getitem__)
        summary = ", ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(measured.items(), key=lambda kv: kv[1]))
        choice = Choice(best, backend.name, f"fastest measured on this device: {summary}", measured)
        model = self.load(backend, next(v for v in candidates if v.name == best))
        self._store_choice(backend, choice)
        return model, choice

    # -- cache -----------------------------------------------------------------------------
    def cache_key(self, backend: Backend) -> str:
        parts = [
            str(self.model_dir.resolve()), self.manifest.source_sha256, self.manifest.created,
            self.cpu.describe(), backend.describe(), f"floor={self.config.min_agreement}",
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def _read_cache(self) -> dict:
        try:
            data = json.loads(self.cache_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _cached_choice(self, backend: Backend) -> Choice | None:
        entry = self._read_cache().get(self.cache_key(backend))
        if not isinstance(entry, dict):
            return None
        try:
            choice = Choice(**entry)
        except TypeError:
            return None
        choice.reason = f"cached: {choice.reason}"
        return choice

    def _store_choice(self, backend: Backend, choice: Choice) -> None:
        cache = self._read_cache()
        cache[self.cache_key(backend)] = asdict(choice)
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(cache, indent=2) + "\n")
            temporary.replace(self.cache_path)
        except OSError as exc:
            log.warning("cannot write the model-choice cache %s (%s); will measure again next start",
                        self.cache_path, exc)
