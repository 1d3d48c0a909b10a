"""``craft-edge``: the device command. One module per subcommand in this package; this one builds the
parser from them, sets up logging and turns the errors people can fix into one line and an exit code."""

from __future__ import annotations

import errno
import logging
import os
import sys

from edge import __version__
from edge.commands import bench, detect, evaluate, frame, probe, read, run, watch
from edge.commands.common import EXIT_BAD_INPUT, PROG, Fatal, OneLineParser
from edge.config.settings import ConfigError

SUBCOMMANDS = (run, detect, read, evaluate, probe, bench, watch, frame)  # in the order --help lists them


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="CRAFT text detection on a Raspberry Pi / Coral Edge TPU.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in SUBCOMMANDS:
        command.add_to(commands)
    return parser


EXIT_BROKEN_PIPE = 141  # as a shell reports a command stopped by SIGPIPE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from edge.models.manifest import ManifestError
    from edge.models.runtime import ModelLoadError, RuntimeMissing
    from edge.models.selection import NoUsableModel
    from edge.service.statelock import StateDirBusy

    try:
        code = args.func(args)
        if sys.stdout is not None:  # None when started with stdout closed (`>&-`)
            sys.stdout.flush()  # here, not at exit: a full disk under `> out.json` is then one line
        return code
    except BrokenPipeError:  # `craft-edge detect ... --json | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"{PROG}: error: cannot write {exc.filename or 'the output'} ({exc.strerror})", file=sys.stderr)
        return 1  # a disk that may be freed: not EXIT_BAD_INPUT, which tells systemd a restart cannot help
    except Fatal as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except StateDirBusy as exc:  # not a config error: exit 1, so systemd retries once the other one is gone
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, ManifestError, NoUsableModel, ModelLoadError, RuntimeMissing) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
