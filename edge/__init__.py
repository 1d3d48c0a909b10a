"""Device side of craft-edge: runs converted CRAFT models on a Raspberry Pi (CPU or Edge TPU).

This package must import with the ``device`` extra alone: never torch, tensorflow or onnx.
"""

__version__ = "0.1.0"
