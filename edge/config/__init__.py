"""What the user configured: config.yaml's sections (``settings``), checked on load by ``typed``, and
paths made absolute where they enter the program (``paths``).

The bottom layer: every part may import it. It imports nothing of edge but two vocabularies its
choices come from, ``edge.models.variants`` and ``edge.detection.tiling``, which import nothing of edge.
"""
