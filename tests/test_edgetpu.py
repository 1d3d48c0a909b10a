"""Edge TPU: readiness check, compiler log parsing, and running the compiler when it exists."""

from __future__ import annotations

import dataclasses
import math
import os
import stat
from pathlib import Path

import pytest

from converter import edgetpu
from converter.tflite_graph import GraphFacts, OpFacts, TensorFacts

# Lines in the layout edgetpu_compiler -s prints.
COMPILER_LOG = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 2210 ms.

Input model: craft_480x640_int8-tpu.tflite
Input size: 20.03MiB
Output model: craft_480x640_int8-tpu_edgetpu.tflite
Output size: 20.41MiB
On-chip memory used for caching model parameters: 7.08MiB
On-chip memory remaining for caching model parameters: 0.00B
Off-chip memory used for streaming uncached model parameters: 12.89MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 46
Operation log: craft_480x640_int8-tpu_edgetpu.log

Operator                       Count      Status

CONV_2D                        27         Mapped to Edge TPU
DEPTHWISE_CONV_2D              3          Mapped to Edge TPU
QUANTIZE                       2          Mapped to Edge TPU
Number of operations that will run on Edge TPU: 46
Number of operations that will run on CPU: 0
"""


def test_parse_compiler_log() -> None:
    facts = edgetpu.parse_compiler_log(COMPILER_LOG)
    assert facts["version"] == "16.0.384591198"
    assert facts["ops_on_tpu"] == 46 and facts["ops_on_cpu"] == 0
    assert facts["on_chip_memory"] == "7.08MiB" and facts["off_chip_memory"] == "12.89MiB"
    assert {"op": "DEPTHWISE_CONV_2D", "count": 3, "status": "Mapped to Edge TPU"} in facts["operators"]
    assert len(facts["operators"]) == 3


def _graph(ops: list[OpFacts], tensors: list[TensorFacts]) -> GraphFacts:
    return GraphFacts(ops=ops, tensors=tensors, subgraphs=1)


def test_readiness_flags_each_trap_by_index() -> None:
    tensors = [
        TensorFacts(0, "in", "uint8", (1, 8, 8, 3), False),
        TensorFacts(1, "bias", "int32", (8,), True),
        TensorFacts(2, "act", "float32", (1, -1, 8, 8), False),
    ]
    ops = [
        OpFacts(0, "CONV_2D", (0, 1), (2,), None),
        OpFacts(1, "RESIZE_BILINEAR", (2,), (0,), True),
        OpFacts(2, "GATHER_ND", (2,), (0,), None),
    ]
    result = edgetpu.check_readiness(_graph(ops, tensors))
    assert not result.ready
    text = "\n".join(result.problems)
    assert "tensor 2 (act): dynamic shape" in text
    assert "tensor 2 (act): float32, not int8/uint8" in text
    assert "op 1 RESIZE_BILINEAR: half_pixel_centers=true" in text
    assert "op 2 GATHER_ND: not supported" in text
    assert "tensor 1" not in text  # int32 bias constants are fine


def test_clean_graph_is_ready() -> None:
    tensors = [TensorFacts(0, "in", "uint8", (1, 8, 8, 3), False), TensorFacts(1, "out", "int8", (1, 16, 16, 3), False)]
    ops = [OpFacts(0, "RESIZE_NEAREST_NEIGHBOR", (0,), (1,), False)]
    assert edgetpu.check_readiness(_graph(ops, tensors)).ready


def test_without_compiler_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    report = edgetpu.compile_model(tmp_path / "m.tflite", tmp_path)
    assert not report.compiled and not report.ran
    assert "edgetpu_compiler not installed here" in report.message
    assert report.command == "edgetpu_compiler -s -o . m.tflite"


def test_with_compiler_records_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in compiler (the real one cannot be installed here) that behaves like it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log.txt"
    log.write_text(COMPILER_LOG)
    fake = bin_dir / "edgetpu_compiler"
    fake.write_text(
        "#!/bin/sh\n# args: -s -o OUT MODEL\nname=$(basename \"$4\" .tflite)\n"
        f"cp \"$4\" \"$3/${{name}}_edgetpu.tflite\"\ncat {log}\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"model")
    out = tmp_path / "out"
    out.mkdir()
    report = edgetpu.compile_model(model, out)
    assert report.compiled and report.ran and report.output_file == "m_edgetpu.tflite"
    assert (out / "m_edgetpu.tflite").read_bytes() == b"model"
    assert report.ops_on_tpu == 46 and report.off_chip_memory == "12.89MiB"


def _activation_graph(*shape: int) -> GraphFacts:
    tensors = [TensorFacts(0, "in", "uint8", (1, shape[1], shape[2], 3), False),
               TensorFacts(1, "weights", "int8", (shape[3], 3, 3, 3), True, shape[3] * 27),
               TensorFacts(2, "conv;fused", "int8", shape, False),
               TensorFacts(3, "same size", "int8", shape, False)]
    return _graph([OpFacts(0, "CONV_2D", (0, 1), (2,), None), OpFacts(1, "CONV_2D", (2,), (3,), None)], tensors)


@pytest.mark.parametrize(("shape", "verdict", "phrase"), [
    ((1, 288, 288, 64), "fits", "expected to map fully"),  # the default tile model
    ((1, 608, 608, 16), "fits", "expected to map fully"),  # YOLOv3-tiny at 608x608: reported to compile
    ((1, 320, 320, 64), "unknown", "unknown: between the largest reported to compile (5.9 MB"),
    ((1, 384, 384, 64), "unknown", "and the smallest reported to fail (16.8 MB"),
    ((1, 512, 512, 64), "too-large", "at or past sizes reported to fail (16.8 MB"),  # the 64-filter U-Net
    ((1, 1024, 1024, 16), "too-large", "YOLOv3-tiny at 1024x1024"),
    ((1, 480, 640, 64), "too-large", "at or past sizes reported to fail"),  # CRAFT at 480x640: 19.7 MB
])
def test_largest_activation_against_reported_compiler_limits(shape: tuple, verdict: str, phrase: str) -> None:
    found = edgetpu.largest_activation(_activation_graph(*shape))
    assert (found.bytes, found.index, found.shape, found.verdict) == (math.prod(shape), 2, list(shape), verdict)
    assert phrase in found.message
    assert found.message.startswith(f"largest activation {math.prod(shape) / 1e6:.1f} MB at int8 (tensor 2 conv, ")


def test_parameters_past_the_on_chip_cache_stream_every_inference() -> None:
    def graph(weight_bytes: int) -> GraphFacts:
        return _graph([], [TensorFacts(0, "w", "int8", (weight_bytes,), True, weight_bytes),
                           TensorFacts(1, "b", "int32", (16,), True, 64)])

    craft = edgetpu.parameter_memory(graph(20_796_246))  # CRAFT int8, as converted
    assert craft.bytes == 20_796_310 and craft.streamed
    assert craft.message == ("parameters 20.8 MB: more than the Edge TPU's ~8.0 MB on-chip parameter cache holds; the "
                             "rest streams from host memory on every inference")
    small = edgetpu.parameter_memory(graph(3_000_000))
    assert not small.streamed and small.message.endswith("fit the Edge TPU's ~8.0 MB on-chip parameter cache")


def test_bilinear_resize_at_512_is_flagged() -> None:
    tensors = [TensorFacts(0, "in", "int8", (1, 256, 256, 8), False),
               TensorFacts(1, "out", "int8", (1, 512, 512, 8), False),
               TensorFacts(2, "small", "int8", (1, 256, 256, 8), False)]
    ops = [OpFacts(0, "RESIZE_BILINEAR", (0,), (1,), False), OpFacts(1, "RESIZE_BILINEAR", (0,), (2,), False)]
    problems = edgetpu.check_readiness(_graph(ops, tensors)).problems
    assert problems == ["op 0 RESIZE_BILINEAR: output 512x512; bilinear resize was reported not mapped to the Edge "
                        "TPU at 512x512"]


def test_the_tile_models_compile_note(tmp_path: Path) -> None:
    """What the run and report.md say about compiling the tile model: the command, the compiler's
    complaint when it ran here and failed, or the compiled file."""
    from converter.report import SizeResult, tile_compile_note
    from edge.models.manifest import Roles
    from tests.test_manifest import example

    manifest = example()
    source = dataclasses.replace(manifest.variants[0], name="int8-tpu", file="craft_160x160_int8-tpu.tflite")
    manifest.variants = [source]
    result = SizeResult(manifest, tmp_path / "160x160", [], {})
    roles = Roles("192x256", "160x160")
    folder = tmp_path / "160x160"
    assert tile_compile_note([result], roles) == (
        "not compiled; on an x86-64 Debian/Ubuntu machine with edgetpu_compiler, run: "
        f"edgetpu_compiler -s -o {folder} {folder}/craft_160x160_int8-tpu.tflite")
    source.edgetpu = {"compiler": {"compiled": False, "ran": True, "message": "edgetpu_compiler failed (exit 1): x"}}
    assert tile_compile_note([result], roles) == "edgetpu_compiler failed (exit 1): x"
    manifest.variants.append(dataclasses.replace(source, name="edgetpu", target="edgetpu", file="c_edgetpu.tflite"))
    source.edgetpu["compiler"]["compiled"] = True
    assert tile_compile_note([result], roles) == "compiled: c_edgetpu.tflite"
