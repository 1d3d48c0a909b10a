"""Edge TPU: a static readiness check of an int8 model, and ``edgetpu_compiler`` when installed.

The compiler only exists for x86-64 Debian/Ubuntu (Coral's apt repository), so most workstations
lack it; the readiness check needs nothing but the .tflite file and tells in advance which ops
would fall back to the CPU and why. The compiler also refuses or splits models whose activations
are large, with no documented limit; the size checks compare the model's largest activation with
what public reports saw compile or fail, and its parameters with the on-chip cache.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from converter.tflite_graph import GraphFacts
from edge.models.backends.edgetpu import COMPILER, compile_command

# Largest activation tensor, in bytes at int8, of models reported to compile for the Edge TPU and of
# the smallest reported to fail. Reports, not a specification (Coral documents no limit):
# YOLOv3-tiny compiles at 608x608 and fails at 1024x1024 (google-coral/edgetpu#157; 16 filters in its
# first layer); a U-Net with 64 filters fails at 512x512 (google-coral/edgetpu#60).
LARGEST_REPORTED_TO_COMPILE = 608 * 608 * 16  # 5.9 MB
SMALLEST_REPORTED_TO_FAIL = min(1024 * 1024 * 16, 512 * 512 * 64)  # 16.8 MB, both
COMPILES = "YOLOv3-tiny at 608x608"
FAILS = "a 64-filter U-Net at 512x512, YOLOv3-tiny at 1024x1024"
# RESIZE_BILINEAR was reported not mapped at 512x512 and mapped at 128x128 (google-coral/edgetpu#31).
BILINEAR_UNMAPPED_PIXELS = 512 * 512
# The Edge TPU caches parameters in roughly 8 MB of on-chip memory (Coral, "Edge TPU compiler"); the
# rest is streamed from the host's memory on every inference (the compiler's "off-chip memory").
ON_CHIP_PARAMETER_BYTES = 8 * 10**6

# Operators the Edge TPU runs (Coral, "TensorFlow models on the Edge TPU", supported operations).
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU",
    "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT",
    "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM",
    "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
})
# Ops that may stand at the model's edges and run on the CPU without splitting the TPU graph.
EDGE_OPS = frozenset({"DEQUANTIZE"})
QUANTIZED_TYPES = ("int8", "uint8")


@dataclass
class Readiness:
    """Result of the static check; ``problems`` name op or tensor indices."""

    ready: bool
    problems: list[str] = field(default_factory=list)


def check_readiness(graph: GraphFacts) -> Readiness:
    problems: list[str] = []
    if graph.subgraphs != 1:
        problems.append(f"{graph.subgraphs} subgraphs; the Edge TPU compiles one")
    for tensor in graph.tensors:
        if any(dim < 0 for dim in tensor.shape_signature):
            problems.append(f"tensor {tensor.index} ({tensor.name}): dynamic shape {list(tensor.shape_signature)}")
        # int32 constants are biases (and shape operands); everything else must be 8-bit.
        if tensor.dtype not in QUANTIZED_TYPES and not (tensor.constant and tensor.dtype == "int32"):
            problems.append(f"tensor {tensor.index} ({tensor.name}): {tensor.dtype}, not int8/uint8")
    for op in graph.ops:
        if op.name not in SUPPORTED_OPS and op.name not in EDGE_OPS:
            problems.append(f"op {op.index} {op.name}: not supported by the Edge TPU")
        if op.name == "RESIZE_BILINEAR" and op.half_pixel_centers:
            problems.append(
                f"op {op.index} RESIZE_BILINEAR: half_pixel_centers=true (PyTorch align_corners=False) is "
                "rejected by the compiler; use the int8-tpu variant (nearest 2x + [1,2,1]/4 filter)"
            )
        if op.name == "RESIZE_BILINEAR" and op.outputs:
            height, width = graph.tensors[op.outputs[0]].shape_signature[1:3]
            if height * width >= BILINEAR_UNMAPPED_PIXELS:
                problems.append(f"op {op.index} RESIZE_BILINEAR: output {height}x{width}; bilinear resize was "
                                "reported not mapped to the Edge TPU at 512x512")
    return Readiness(ready=not problems, problems=problems)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@dataclass
class Activation:
    """The largest activation tensor, and what reports say the compiler does with one that size."""

    bytes: int  # its elements: bytes at int8
    tensor: str
    index: int
    shape: list[int]
    verdict: str  # "fits", "unknown" or "too-large"
    message: str


def largest_activation(graph: GraphFacts) -> Activation:
    """The largest non-constant tensor, the first by index of equals (CRAFT: its first two convs' outputs,
    H*W*64). The message names it by the first of the op names TFLite fused into its name."""
    tensor = max((t for t in graph.tensors if not t.constant), key=lambda t: math.prod(t.shape_signature))
    size, shape = math.prod(tensor.shape_signature), list(tensor.shape_signature)
    compiles, fails = _mb(LARGEST_REPORTED_TO_COMPILE), _mb(SMALLEST_REPORTED_TO_FAIL)
    if size <= LARGEST_REPORTED_TO_COMPILE:
        verdict, why = "fits", (f"at most the {compiles} of the largest reported to compile ({COMPILES}): expected to "
                                "map fully")
    elif size < SMALLEST_REPORTED_TO_FAIL:
        verdict, why = "unknown", (f"unknown: between the largest reported to compile ({compiles}, {COMPILES}) and the "
                                   f"smallest reported to fail ({fails}, {FAILS})")
    else:
        verdict, why = "too-large", (f"at or past sizes reported to fail ({fails}: {FAILS}); expect the compiler to "
                                     "refuse the model or to leave part of it to the CPU")
    name = tensor.name.split(";")[0]
    message = f"largest activation {_mb(size)} at int8 (tensor {tensor.index} {name}, {shape}): {why}"
    return Activation(size, tensor.name, tensor.index, shape, verdict, message)


@dataclass
class Parameters:
    """Weights and biases as stored, against the Edge TPU's on-chip parameter cache."""

    bytes: int
    streamed: bool  # some of them come from host memory on every inference
    message: str


def parameter_memory(graph: GraphFacts) -> Parameters:
    size = sum(t.data_bytes for t in graph.tensors)
    streamed = size > ON_CHIP_PARAMETER_BYTES
    cache = f"the Edge TPU's ~{_mb(ON_CHIP_PARAMETER_BYTES)} on-chip parameter cache"
    if streamed:
        message = (f"parameters {_mb(size)}: more than {cache} holds; the rest streams from host memory on every "
                   "inference")
    else:
        message = f"parameters {_mb(size)}: fit {cache}"
    return Parameters(size, streamed, message)


@dataclass
class CompilerReport:
    """What ``edgetpu_compiler`` said about one model."""

    compiled: bool
    ran: bool  # False: not installed here (``message`` says how to run it elsewhere)
    command: str
    output_file: str | None = None
    version: str | None = None
    ops_on_tpu: int | None = None
    ops_on_cpu: int | None = None
    on_chip_memory: str | None = None
    off_chip_memory: str | None = None
    operators: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_LOG_FIELDS = {
    "version": r"Edge TPU Compiler version (\S+)",
    "ops_on_tpu": r"Number of operations that will run on Edge TPU:\s*(\d+)",
    "ops_on_cpu": r"Number of operations that will run on CPU:\s*(\d+)",
    "on_chip_memory": r"On-chip memory used for caching model parameters:\s*(\S+)",
    "off_chip_memory": r"Off-chip memory used for streaming uncached model parameters:\s*(\S+)",
}
_OPERATOR_ROW = re.compile(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*)$")


def parse_compiler_log(log: str) -> dict[str, Any]:
    """The facts we keep from ``edgetpu_compiler -s`` output."""
    facts: dict[str, Any] = {}
    for key, pattern in _LOG_FIELDS.items():
        match = re.search(pattern, log)
        if match:
            facts[key] = int(match.group(1)) if key.startswith("ops_") else match.group(1)
    facts["operators"] = [
        {"op": m.group(1), "count": int(m.group(2)), "status": m.group(3).strip()}
        for m in map(_OPERATOR_ROW.match, log.splitlines())
        if m
    ]
    return facts


def compile_model(model: Path, out_dir: Path) -> CompilerReport:
    """Run the compiler if it is on PATH; otherwise say how to run it elsewhere."""
    command = compile_command(model, out_dir)
    printable = " ".join(compile_command(Path(model.name), Path(".")))  # run in the model's folder
    if shutil.which(COMPILER) is None:
        return CompilerReport(
            compiled=False,
            ran=False,
            command=printable,
            message=f"{COMPILER} not installed here; on an x86-64 Debian/Ubuntu machine with it, run: {printable}",
        )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    log = result.stdout + result.stderr
    output = out_dir / f"{model.stem}_edgetpu.tflite"
    facts = parse_compiler_log(log)
    ok = result.returncode == 0 and output.is_file()
    return CompilerReport(
        compiled=ok,
        ran=True,
        command=printable,
        output_file=output.name if ok else None,
        message="compiled" if ok else f"{COMPILER} failed (exit {result.returncode}): {log.strip()[-300:]}",
        **facts,
    )
