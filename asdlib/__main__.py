"""The command line: ``python -m asdlib <command> --help``.

Each command lives in the module that does the work; this file only wires them up. A module
that provides a command has ``add_arguments(parser)`` and ``run(args)``.

    python -m asdlib synth --profile smoke --out /tmp/s
    python -m asdlib train --data /tmp/s --profile smoke --out /tmp/r
    python -m asdlib evaluate --run /tmp/r
    python -m asdlib table /tmp/r

``torchrun --nproc_per_node N -m asdlib train ...`` trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module, one-line help); None: defined in this file
COMMANDS = {
    "synth": ("asdlib.synth", "write the synthetic machine-sound dataset in the DCASE layout"),
    "download": (None, "download DCASE 2020 Task 2 (verified, resumable) into the DCASE layout"),
    "train": ("asdlib.train", "train STgram / TASTgram on a DCASE-layout data root"),
    "evaluate": ("asdlib.evaluate", "score the test clips with a trained run: AUC / pAUC, DCASE files"),
    "table": ("asdlib.experiments", "print runs in the layout of the paper's tables, beside its numbers"),
    "bench": ("asdlib.bench", "time TASTgram training and evaluation (ms per clip) on this machine"),
    "student": ("asdlib.classroom", "write the student edition: the chapters without their solutions"),
}


class _Download:
    """``python -m asdlib download``: the command-line face of :func:`asdlib.dcase.download`."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        from asdlib import dcase, layout

        parser.add_argument("--dest", required=True, help="data root to fill")
        parser.add_argument("--types", nargs="+", choices=layout.MACHINE_TYPES, default=None,
                            metavar="TYPE", help=f"machine types (default: all of {list(layout.MACHINE_TYPES)})")
        parser.add_argument("--subsets", default="dev",
                            help=f"comma-separated subsets from {list(dcase.SUBSETS)} (default dev; "
                                 "the authors train on dev,add)")
        parser.add_argument("--keep-zips", action="store_true", help="keep the verified zip files")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        from asdlib import dcase

        subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
        unknown = [s for s in subsets if s not in dcase.SUBSETS]
        if unknown or not subsets:
            raise SystemExit(f"python -m asdlib download: error: --subsets: unknown subset(s) "
                             f"{unknown or args.subsets!r}; choose from {list(dcase.SUBSETS)}")
        try:
            dest = dcase.download(args.dest, types=args.types, subsets=subsets,
                                  progress=not args.quiet, keep_zips=args.keep_zips)
        except (ValueError, OSError) as err:
            raise SystemExit(f"python -m asdlib download: error: {err}") from None
        print(f"DCASE 2020 Task 2 ({','.join(subsets)}) in {dest}")
        return 0


def _command_module(name: str):
    module_name = COMMANDS[name][0]
    return _Download if module_name is None else importlib.import_module(module_name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m asdlib",
        description="Anomalous sound detection with Noisy-ArcMix: data, training, evaluation.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module = _command_module(name)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    result = args._module.run(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
