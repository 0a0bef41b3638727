"""The command line: ``python -m asdlib <command> --help``.

Each command lives in the module that does the work; this file only wires them up. A module
that provides a command has ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module, one-line help)
COMMANDS = {
    "synth": ("asdlib.synth", "write the synthetic machine-sound dataset in the DCASE layout"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m asdlib",
        description="Anomalous sound detection with Noisy-ArcMix: data, training, evaluation.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    result = args._module.run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
