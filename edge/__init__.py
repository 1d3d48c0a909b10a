"""Device side of craft-edge: runs converted CRAFT models on a Raspberry Pi (CPU or Edge TPU).

The parts, bottom to top (each ``__init__`` says what it may import): ``config`` (settings) <-
``sources`` (frames in), ``models`` (which model on which hardware), ``messaging`` (messages out),
``detection`` (one frame to boxes) and ``recognition`` (word crops to text), the last two running
whatever model runner they are handed, none of these importing another except ``models`` building the
``recognition`` reader it hands back <- ``service`` (the daemon) <- ``commands`` (``craft-edge``).
``tests/test_layout.py`` keeps it so.

This package must import with the ``device`` extra alone: never torch, tensorflow or onnx, and never
``converter`` (which imports ``edge``, not the reverse).
"""

__version__ = "0.1.0"
