"""One frame to boxes: letterbox or tiles, the CRAFT score maps stitched, boxes in source pixels.

Imports ``edge.config`` only: it runs whatever model runner it is handed (``detector.SizedScoreFn``),
so it knows neither where frames come from nor where its boxes go. Imported by ``edge.service`` and
``edge.commands``; never by ``edge.sources``, ``edge.models`` or ``edge.messaging``.
"""
