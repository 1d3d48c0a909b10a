"""Which model runs on which hardware: the variant registry, the manifest the converter writes, the
TFLite runtime, one backend module per accelerator, the choice between variants, and the runners.

Imports ``edge.config``, and ``edge.recognition`` for the reader ``recognizer.load_reader`` builds.
Imported by ``edge.service``, ``edge.commands`` and ``converter/`` (the manifest and the registry are
the contract); never by ``edge.sources``, ``edge.detection`` or ``edge.messaging``.
"""
