"""Static facts about a .tflite file read from its flatbuffer: operators, tensors, options."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tensorflow.lite.python import schema_py_generated as schema

_OP_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_TYPE_NAMES = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")}


@dataclass(frozen=True)
class TensorFacts:
    index: int
    name: str
    dtype: str  # "float32", "int8", "uint8", "int32", ...
    shape_signature: tuple[int, ...]  # -1 marks a dynamic dimension
    constant: bool  # holds weights (a non-empty buffer)
    data_bytes: int = 0  # size of its buffer (weights and biases as stored); 0 for activations


@dataclass(frozen=True)
class OpFacts:
    index: int
    name: str  # builtin operator name, e.g. "CONV_2D"
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    half_pixel_centers: bool | None  # RESIZE_* ops only


@dataclass(frozen=True)
class GraphFacts:
    ops: list[OpFacts]
    tensors: list[TensorFacts]
    subgraphs: int

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(op.name for op in self.ops).items()))

    @property
    def transpose_count(self) -> int:
        return self.op_counts.get("TRANSPOSE", 0)


def _resize_half_pixel(op: schema.Operator, name: str) -> bool | None:
    table = op.BuiltinOptions()
    if table is None or name not in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        return None
    options = schema.ResizeBilinearOptions() if name == "RESIZE_BILINEAR" else schema.ResizeNearestNeighborOptions()
    options.Init(table.Bytes, table.Pos)
    return bool(options.HalfPixelCenters())


def _builtin_codes(model: schema.Model) -> list[int]:
    """Each operator code's builtin number: the larger of the two fields (older files fill only the deprecated one,
    codes past 126 only the new one)."""
    return [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
            for i in range(model.OperatorCodesLength())]


def every_op_name(path: Path) -> Counter[str]:
    """How often each operator appears in any subgraph of a .tflite file (loop bodies included)."""
    model = schema.Model.GetRootAsModel(path.read_bytes(), 0)
    codes = _builtin_codes(model)
    return Counter(_OP_NAMES.get(codes[graph.Operators(j).OpcodeIndex()], "CUSTOM")
                   for graph in (model.Subgraphs(i) for i in range(model.SubgraphsLength()))
                   for j in range(graph.OperatorsLength()))


def read_graph(path: Path) -> GraphFacts:
    """Operators and tensors of the first (main) subgraph of a .tflite file."""
    model = schema.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    codes = _builtin_codes(model)
    tensors = []
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        signature = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()
        buffer = model.Buffers(tensor.Buffer())
        data_bytes = max(buffer.DataLength(), buffer.Size()) if buffer is not None else 0
        tensors.append(
            TensorFacts(
                index=i,
                name=(tensor.Name() or b"").decode(),
                dtype=_TYPE_NAMES.get(tensor.Type(), str(tensor.Type())),
                shape_signature=tuple(int(v) for v in signature) if hasattr(signature, "__iter__") else (),
                constant=data_bytes > 0,
                data_bytes=data_bytes,
            )
        )
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        name = _OP_NAMES.get(codes[op.OpcodeIndex()], f"CUSTOM_{op.OpcodeIndex()}")
        ops.append(
            OpFacts(
                index=i,
                name=name,
                inputs=tuple(int(v) for v in op.InputsAsNumpy() if v >= 0),
                outputs=tuple(int(v) for v in op.OutputsAsNumpy()),
                half_pixel_centers=_resize_half_pixel(op, name),
            )
        )
    return GraphFacts(ops=ops, tensors=tensors, subgraphs=model.SubgraphsLength())
