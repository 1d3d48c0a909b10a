"""``craft-edge`` and its subcommands: one module each (``add_to`` its options, ``execute`` it), sharing
``common`` (argument types, shared options, one-line errors, exit codes); ``main`` builds the parser.

The top: it may import every part; no part of edge imports it.
"""
