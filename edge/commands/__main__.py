"""``python -m edge.commands``: the same as ``craft-edge``."""

import sys

from edge.commands.main import main

sys.exit(main())
