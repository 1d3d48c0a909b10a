"""Reading a word: its four corners cut out upright (``crops``), the recognizer run on the crops
(``reader``: resized to the model's height, padded to a width it takes, batched by width), the CTC
output decoded greedily (``ctc``).

Imports ``edge.config`` only: it runs whatever sequence model it is handed (``reader.SequenceModel``),
like ``edge.detection``; loading the converted recognizer and choosing its variant is ``edge.models``.
Imported by ``edge.models``, ``edge.service`` and ``edge.commands``; never by ``edge.sources``,
``edge.messaging`` or ``edge.detection`` (``edge.models`` builds the reader it hands back).
"""
