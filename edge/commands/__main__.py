"""``python -m edge.commands``: the same as ``craft-edge``."""

import sys

from edge.commands.main import main

if __name__ == "__main__":
    sys.exit(main())
