"""Every model variant craft-edge knows, in one list: the converter builds from it, the config's
``model.prefer`` choices and the manifest's targets derive from it.

A variant's ``target`` names the backend that runs it (``edge.models.backends``): ``cpu`` variants run on
the TFLite interpreter, ``edgetpu`` on a Coral. ``graph`` says which TensorFlow graph the
converter quantises it from; ``None`` means it is not built from a graph but compiled from
``compiled_from`` by an external compiler.
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_GRAPH = "standard"  # exactly the official model
TPU_GRAPH = "edgetpu-upsample"  # 2x upsampling the Edge TPU compiler accepts (converter/model.py)


@dataclass(frozen=True)
class VariantKind:
    name: str
    target: str  # the backend that runs it
    quantization: str  # "none", "fp16", "dynamic" or "int8" (uint8 in and out)
    graph: str | None  # the graph the converter builds it from; None: compiled from another variant
    compiled_from: str | None = None
    summary: str = ""


VARIANTS: tuple[VariantKind, ...] = (
    VariantKind("fp32", "cpu", "none", STANDARD_GRAPH, summary="float32, the reference"),
    VariantKind("fp16", "cpu", "fp16", STANDARD_GRAPH, summary="float16 weights, float32 compute"),
    VariantKind("dynamic", "cpu", "dynamic", STANDARD_GRAPH, summary="int8 weights, float activations"),
    VariantKind("int8", "cpu", "int8", STANDARD_GRAPH, summary="full integer, uint8 in and out"),
    VariantKind("int8-tpu", "cpu", "int8", TPU_GRAPH, summary="full integer with Edge-TPU-friendly upsampling"),
    VariantKind("edgetpu", "edgetpu", "int8", None, compiled_from="int8-tpu",
                summary="int8-tpu compiled by edgetpu_compiler"),
)

NAMES: tuple[str, ...] = tuple(kind.name for kind in VARIANTS)
TARGETS: tuple[str, ...] = tuple(dict.fromkeys(kind.target for kind in VARIANTS))
BUILT: tuple[str, ...] = tuple(kind.name for kind in VARIANTS if kind.graph is not None)  # what the converter makes
AUTO = "auto"
CHOICES: tuple[str, ...] = (AUTO, *NAMES)  # model.prefer
# the text recognizer's CPU variants (converter.recognizer says why not int8); recognition.variant
RECOGNIZER_VARIANTS: tuple[str, ...] = ("fp32", "fp16", "dynamic")


def kind(name: str) -> VariantKind:
    for candidate in VARIANTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown variant {name!r}; known: {', '.join(NAMES)}")


def built_from(graph: str) -> tuple[str, ...]:
    return tuple(k.name for k in VARIANTS if k.graph == graph)
