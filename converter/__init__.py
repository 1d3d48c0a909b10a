"""Workstation side of craft-edge: CRAFT weights -> ONNX -> verified TFLite variants + manifest."""
