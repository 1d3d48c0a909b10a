"""Inference backends, one module each, all returning ``edge.runtime.CraftModel``.

``cpu`` runs a CPU variant on the TFLite interpreter (XNNPACK); ``edgetpu`` runs the compiled
variant through the Edge TPU delegate. A backend only loads; choosing one is ``edge.selection``.
"""
