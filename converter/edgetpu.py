"""Edge TPU: a static readiness check of an int8 model, and ``edgetpu_compiler`` when installed.

The compiler only exists for x86-64 Debian/Ubuntu (Coral's apt repository), so most workstations
lack it; the readiness check needs nothing but the .tflite file and tells in advance which ops
would fall back to the CPU and why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from converter.tflite_graph import GraphFacts

COMPILER = "edgetpu_compiler"

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
    return Readiness(ready=not problems, problems=problems)


@dataclass
class CompilerReport:
    """What ``edgetpu_compiler`` said about one model."""

    compiled: bool
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


def compile_command(model: Path, out_dir: Path) -> list[str]:
    return [COMPILER, "-s", "-o", str(out_dir), str(model)]


def compile_model(model: Path, out_dir: Path) -> CompilerReport:
    """Run the compiler if it is on PATH; otherwise say how to run it elsewhere."""
    command = compile_command(model, out_dir)
    printable = " ".join([*command[:-3], "-o", ".", model.name])
    if shutil.which(COMPILER) is None:
        return CompilerReport(
            compiled=False,
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
        command=printable,
        output_file=output.name if ok else None,
        message="compiled" if ok else f"{COMPILER} failed (exit {result.returncode}): {log.strip()[-300:]}",
        **facts,
    )
