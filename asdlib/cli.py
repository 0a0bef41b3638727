"""The command line: ``python -m asdlib <command> --help``.

All argument wiring lives here; each command calls one library function and prints its result.

    python -m asdlib synth --profile smoke --out /tmp/s
    python -m asdlib train --data /tmp/s --profile smoke --out /tmp/r
    python -m asdlib evaluate --run /tmp/r
    python -m asdlib table /tmp/r

``torchrun --nproc_per_node N -m asdlib train ...`` trains data-parallel.

One validation style: every option is checked by its argparse ``type`` where it enters (a number
that must be positive, a folder that must exist), and every error the library raises for bad
input (a ``ValueError``, a missing file, a folder that cannot be written) is printed as one line
``python -m asdlib <command>: error: ...`` naming the option, with exit status 2. Ctrl-C prints
one line and exits with 130; training, generation and downloads resume with the same command.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from pathlib import Path

import pandas as pd

from asdlib import (
    bench,
    classroom,
    curve,
    dcase,
    evaluate,
    experiments,
    layout,
    losses,
    metrics,
    models,
    profiles,
    runfolder,
    runtime,
    synth,
    tables,
    train,
)

__all__ = ["build_parser", "main"]

PROG = "python -m asdlib"


# ----------------------------------------------------------------------------------------
# Option types: each checks its value where it enters
# ----------------------------------------------------------------------------------------


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def int_in(low: int, high: int | None = None, why: str = ""):
    """An option type: a whole number in ``[low, high]`` (``why`` explains the bound)."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}{why}, got {text!r}")
        return value

    check.__name__ = "whole number"
    return check


non_negative_int = int_in(0)
positive_int = int_in(1)
#: Seeds: torch and numpy take any of these on every platform.
seed_int = int_in(0, 2**32 - 1)
#: Processes: more than a few per core only thrash.
MAX_PROCESSES = 4 * (os.cpu_count() or 1)
processes_int = int_in(1, MAX_PROCESSES, f" (4 per core of this machine's {os.cpu_count()})")
workers_int = int_in(0, MAX_PROCESSES, f" (4 per core of this machine's {os.cpu_count()})")
#: BatchNorm normalises over the clips of a batch: one clip cannot be normalised.
batch_int = int_in(2, None, " (BatchNorm needs two clips)")


def seconds_float(text: str) -> float:
    """A clip length: positive, at most `asdlib.layout.MAX_SECONDS`."""
    value = positive_float(text)
    try:
        layout.num_samples(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def learning_rate(text: str) -> float:
    """A learning rate of AdamW: in (0, 1] (the book uses 1e-3, the authors 1e-4)."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1 (the book trains with 1e-3, the "
                                         f"authors with 1e-4), got {text!r}")
    return value


def device_name(text: str) -> str:
    """A torch device this machine has (`asdlib.runtime.device` checks it)."""
    try:
        runtime.device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("device: ")) from None
    return text


def existing_folder(what: str):
    """An option type: a folder that must exist (``what`` names it in the error)."""
    def check(text: str) -> Path:
        path = Path(text)
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{what} {text} is a file, not a folder")
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{what} {text} does not exist")
        return path

    check.__name__ = what
    return check


# ----------------------------------------------------------------------------------------
# The commands: (options, run)
# ----------------------------------------------------------------------------------------


def _synth_options(add) -> None:
    add("--out", required=True, help="dataset folder to write")
    add("--profile", choices=sorted(profiles.PROFILES), default=None,
        help=f"clip counts and length (default: ${profiles.ENV_VAR} or book)")
    add("--seed", type=seed_int, default=None,
        help="global seed (default: the profile's data seed, 0)")
    add("--seconds", type=seconds_float, default=None,
        help=f"clip length in seconds, at most {layout.MAX_SECONDS} (default: the profile's)")
    add("--types", nargs="+", choices=layout.MACHINE_TYPES, default=None, metavar="TYPE",
        help=f"machine types to write, from {list(layout.MACHINE_TYPES)}")
    add("--all-ids", action="store_true",
        help="write all 41 machine IDs (default: the profile's, dev IDs for book)")
    add("--overwrite", action="store_true", help="replace clips written into --out with other options")
    add("--workers", type=processes_int, default=1, help="processes writing clips (default 1)")
    add("--quiet", action="store_true", help="no progress bar")


def _synth(args) -> int:
    seed = profiles.get_profile(args.profile).data_seed if args.seed is None else args.seed
    info = synth.generate(args.out, profile=args.profile, seed=seed, seconds=args.seconds,
                          types=args.types, ids="all" if args.all_ids else None,
                          progress=not args.quiet, overwrite=args.overwrite, workers=args.workers)
    print(f"{info['total_clips']} clips in {args.out} (profile {info['profile']}, "
          f"seed {info['seed']}, {info['seconds']:g} s, {info['ids']} IDs)")
    return 0


def _download_options(add) -> None:
    add("--dest", required=True, help="data root to fill")
    add("--types", nargs="+", choices=layout.MACHINE_TYPES, default=None, metavar="TYPE",
        help=f"machine types (default: all of {list(layout.MACHINE_TYPES)})")
    add("--subsets", default="dev",
        help=f"comma-separated subsets from {list(dcase.SUBSETS)} (default dev; the authors "
             "train on dev,add)")
    add("--base-url", default=None, help=f"a mirror of Zenodo's paths (or ${dcase.URL_ENV_VAR})")
    add("--keep-zips", action="store_true", help="keep the verified zip files")
    add("--quiet", action="store_true", help="no progress bars")


def _download(args) -> int:
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()]
    unknown = [s for s in subsets if s not in dcase.SUBSETS]
    if unknown or not subsets:
        raise ValueError(f"subsets: unknown subset(s) {unknown or args.subsets!r}; choose from "
                         f"{list(dcase.SUBSETS)}")
    dest = dcase.download(args.dest, types=args.types, subsets=subsets, base_url=args.base_url,
                          progress=not args.quiet, keep_zips=args.keep_zips)
    print(f"DCASE 2020 Task 2 ({','.join(subsets)}) in {dest}")
    return 0


def _speed_options(add) -> None:
    add("--device", type=device_name, default=None,
        help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    add("--reuse-freed-memory", action="store_true",
        help="glibc malloc keeps freed memory for reuse (1.2-1.5x faster CPU training; the "
             "process keeps its peak memory); see asdlib.runtime.reuse_freed_memory")


def _train_options(add) -> None:
    add("--data", required=True, type=existing_folder("data root"),
        help="data root in the DCASE layout (<root>/<type>/train/*.wav): synthetic "
             "(python -m asdlib synth) or real (python -m asdlib download)")
    add("--out", required=True, help="run folder to write (resumed if it exists)")
    add("--profile", choices=sorted(profiles.PROFILES), default=None,
        help=f"training recipe (default: ${profiles.ENV_VAR} or book)")
    add("--model", choices=models.MODELS, default="tastgram", help="network (default tastgram)")
    add("--mode", choices=losses.MODES, default="noisy_arcmix",
        help="training loss (default noisy_arcmix)")
    add("--seed", type=seed_int, default=None, help="seed (default: the profile's first)")
    add("--epochs", type=positive_int, default=None, dest="num_epochs",
        help="number of epochs (default: the profile's)")
    add("--batch-size", type=batch_int, default=None,
        help="clips per batch, at least 2 (default: the profile's)")
    add("--patience", type=positive_int, default=None,
        help="stop once the validation loss has not improved for this many epochs "
             "(default: the profile's)")
    add("--lr", type=learning_rate, default=None,
        help="peak learning rate, in (0, 1] (default: the profile's)")
    add("--seconds", type=seconds_float, default=None,
        help="clip length in seconds (default: the profile's; 10 for the real data)")
    add("--amp", choices=profiles.AMP_CHOICES, default=None,
        help="arithmetic (default: the profile's; auto: float32 on a CPU, bf16 or fp16 with a "
             "scaler on a GPU; bf16: also on a CPU, with float32 islands)")
    _speed_options(add)
    add("--workers", type=workers_int, default=0, help="DataLoader worker processes (default 0)")
    add("--compile", action="store_true",
        help="torch.compile the network (a minute or more to start; for long runs)")
    add("--evaluate", action="store_true", help="evaluate the best checkpoint afterwards")
    add("--quiet", action="store_true", help="no progress bars")


def _train(args) -> int:
    if args.reuse_freed_memory:
        runtime.reuse_freed_memory()
    names = ("seed", "num_epochs", "batch_size", "lr", "seconds", "patience", "amp")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    config = profiles.TrainConfig.from_profile(args.profile, model=args.model, mode=args.mode,
                                               **overrides)
    setup = train.Setup(device=args.device, progress=not args.quiet, num_workers=args.workers,
                        compile_model=args.compile)
    history = train.train(config, args.data, args.out, setup)
    if history is None:  # not rank 0 of a distributed run
        return 0
    info = runfolder.read_run_info(args.out)
    best = history.loc[history["val_loss"].idxmin()]
    chance = 100 / len(info["class_map"])
    print(f"trained {config.summary()}\n  on {info['dataset']['description']}\n"
          f"  best epoch {int(best['epoch'])}/{config.num_epochs}: val loss {best['val_loss']:.3f}, "
          f"val accuracy {100 * best['val_accuracy']:.1f} % (chance {chance:.1f} %)\n"
          f"  run folder: {args.out}")
    if args.evaluate:
        _print_result(evaluate.evaluate(args.out, device=args.device, progress=not args.quiet))
    return 0


def _evaluate_options(add) -> None:
    add("--run", required=True, type=existing_folder("run folder"),
        help="run folder written by python -m asdlib train")
    add("--data", default=None, type=existing_folder("data root"),
        help="data root to evaluate on (default: the one the run was trained on)")
    add("--score", choices=evaluate.SCORES, default="ce",
        help="anomaly score (default ce: the authors' cross-entropy of the margin logits)")
    add("--checkpoint", choices=("best", "last"), default="best",
        help="which checkpoint (default best: lowest validation loss)")
    add("--out", default=None,
        help="output folder (default: the run folder for ce with the best checkpoint on the "
             "run's own data, else <run>/eval_<score>[_last][_<fingerprint>]: _last for the "
             "last checkpoint, the data's fingerprint for other data)")
    add("--batch-size", type=int_in(1, 4096), default=64, help="clips per forward pass (default 64)")
    _speed_options(add)
    add("--quiet", action="store_true", help="no progress bars")


def _evaluate(args) -> int:
    if args.reuse_freed_memory:
        runtime.reuse_freed_memory()
    result = evaluate.evaluate(args.run, args.data, score=args.score, which=args.checkpoint,
                               out_dir=args.out, batch_size=args.batch_size, device=args.device,
                               progress=not args.quiet)
    _print_result(result)
    print(f"written: {result['out_dir']}/metrics.json, scores.csv, dcase/*.csv, embeddings.npz")
    return 0


def _print_result(result: dict) -> None:
    """A `metrics.json` as a short report naming the run, the profile and the data."""
    print(f"{result['run']}, score={result['score']}, {result['checkpoint']} checkpoint "
          f"(epoch {result['epoch']})")
    print(f"data: {result['dataset']['description']}")
    if "per_type" not in result:
        print("no labelled test clip: score files written, no AUC")
        return
    print("AUC / pAUC: mean over machine IDs (DCASE 2020); pooled: all IDs of a type together "
          "(the authors' script); in %")
    scores = pd.read_csv(Path(result["out_dir"]) / "scores.csv")
    print(tables.type_summary(scores[scores["label"] >= 0]).round(2).to_string())


def _table_options(add) -> None:
    add("runs", nargs="+", metavar="RUN", type=existing_folder("run folder"),
        help="evaluated run folders (python -m asdlib train ... then evaluate)")
    add("--protocol", choices=metrics.PROTOCOLS, default="per_id_mean",
        help="per_id_mean: AUC per machine ID, averaged per type (DCASE 2020); "
             "pooled: all IDs of a type together (the authors' script)")
    add("--paper", choices=("ablation", "comparison", "none"), default="ablation",
        help="which table of the paper to print beside ours (default ablation)")


def _checkpoint_note(run) -> str:
    """" (last checkpoint, epoch 3)" for results of another checkpoint than the best."""
    which = run.metrics.get("checkpoint", "best")
    return "" if which == "best" else f" ({which} checkpoint, epoch {run.metrics.get('epoch')})"


def _table(args) -> int:
    try:
        runs = [experiments.open_run(path) for path in args.runs]
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(f"runs: {err}") from None
    ours = tables.paper_table({f"{run.label} seed {run.config.seed}{_checkpoint_note(run)} "
                               f"[ours, {i + 1}]": run for i, run in enumerate(runs)},
                              args.protocol)
    shown = [ours]
    if args.paper != "none":
        paper = tables.published(args.paper)
        paper.index = [f"{name} [paper]" for name in paper.index]
        shown.append(paper[[c for c in paper.columns if c in ours.columns]])
    pd.set_option("display.width", 200)
    print(f"AUC / pAUC in %, protocol={args.protocol}")
    print(pd.concat(shown).round(2).to_string())
    print("\nwhich data each row is on:")
    for i, run in enumerate(runs):
        print(f"  [ours, {i + 1}] {run.path}: profile={run.config.profile}, "
              f"{run.metrics.get('checkpoint', 'best')} checkpoint (epoch "
              f"{run.metrics.get('epoch')}), {run.dataset}")
    if args.paper != "none":
        print("  [paper] Choi & Choi, ICASSP 2024: real DCASE 2020 Task 2 development set, "
              "10 s clips, per-type figures as published")
    return 0


def _bench_options(add) -> None:
    add("--seconds", type=seconds_float, nargs="+", default=[2.0, 10.0],
        help="clip lengths in seconds (default 2 10)")
    add("--batch-sizes", type=int_in(1, 4096), nargs="+", default=[1, 16, 64],
        help="batch sizes (default 1 16 64)")
    add("--threads", type=processes_int, default=None, help="torch intra-op threads")
    add("--plain", action="store_true",
        help="asdlib with PyTorch's defaults (NCHW, per-tensor AdamW) instead of the trainer's "
             "set-up; not the authors' code")
    add("--compile", action="store_true", help="torch.compile the sub-networks")
    add("--repeats", type=positive_int, default=3, help="timed runs per figure (median)")
    add("--warmup", type=non_negative_int, default=1, help="untimed runs first")
    add("--cpu-time", action="store_true",
        help="report CPU time instead of wall time (steadier on a shared machine)")
    add("--levers", nargs="*", choices=sorted(profiles.PROFILES), default=None, metavar="SIZE",
        help="instead: time each speed lever (bf16, float32 islands, log-Mel once, NCHW) "
             "against the default, side by side in one process, at these profiles' sizes "
             "(default: book paper); --repeats rounds, --batch-sizes the batch")
    _speed_options(add)


def _bench(args) -> int:
    if args.reuse_freed_memory:
        runtime.reuse_freed_memory()
    timing = bench.Timing(repeats=args.repeats, warmup=args.warmup, cpu_time=args.cpu_time,
                          threads=args.threads)
    if args.levers is not None:
        batch = args.batch_sizes[0] if args.batch_sizes != [1, 16, 64] else None
        bench.levers(args.levers or ("book", "paper"), batch=batch, timing=timing)
        return 0
    bench.bench(args.seconds, args.batch_sizes, args.device, timing, plain=args.plain,
                compile_model=args.compile)
    return 0


def _runs_options(add) -> None:
    add("--profile", choices=sorted(profiles.PROFILES), default="book",
        help="whose runs (default book: the runs chapters 7-11 read, which are the evidence "
             "profile's)")
    add("--jobs", type=processes_int, default=None,
        help="training processes, one torch thread each (default 2; 8 with --gpu)")
    add("--gpu", action="store_true",
        help="on a CUDA GPU: generate the data with every core, hold the clips on the GPU and "
             "train --jobs runs at a time there (default jobs: 8); make runs-gpu")
    add("--check", default=None, metavar="LABEL",
        help='instead: retrain one published run from scratch and compare, e.g. "TASTgram (NAMix)"')
    add("--seed", type=seed_int, default=None, help="with --check: its seed (default: the first)")
    add("--commit", action="store_true",
        help="git-commit asdlib/published after the autoencoder and after each run, so a stopped "
             "call loses no finished run (in a clone of the book's repository)")
    add("--quiet", action="store_true", help="no progress bars")


def _workers(gpu: bool, jobs: int) -> "experiments.Workers":
    """How `runs` and `curve` train: ``jobs`` CPU processes with one torch thread each (which
    generate the data first, if it is missing), or with ``gpu`` the GPU route (the data
    generated with every core, the clips held on the GPU, ``jobs`` runs at a time there)."""
    if not gpu:
        return experiments.Workers(jobs=jobs, synth_workers=jobs)
    try:
        runtime.device("cuda")  # refused before anything is generated or trained
    except ValueError:
        raise ValueError(f"--gpu: this machine has no CUDA GPU ({runtime.available_devices()}); "
                         f"leave out --gpu to train on the CPU") from None
    return experiments.Workers(jobs=jobs, device="cuda", data_on_device=True,
                               synth_workers=os.cpu_count() or 1)


def _runs(args) -> int:
    if args.check is not None:
        profile = profiles.get_profile(args.profile).runs_profile()
        seed = profile.seeds[0] if args.seed is None else args.seed
        result = experiments.check_published(args.check, seed, profile)
        for name in ("published", "retrained"):
            average = result[name]
            print(f"{name:>10}: AUC {100 * average['auc']:.4f}  pAUC {100 * average['pauc']:.4f}")
        print("the same metrics" if result["equal"] else "DIFFERENT metrics",
              f"(retrained in {result['home']})")
        return 0 if result["equal"] else 1
    workers = _workers(args.gpu, args.jobs or (8 if args.gpu else 2))
    on_published = None
    if args.commit:
        experiments.check_committable()  # refused before anything trains
        on_published = experiments.commit_published
    manifest = experiments.publish_runs(args.profile, workers, progress=not args.quiet,
                                        on_published=on_published)
    chosen = profiles.get_profile(args.profile).runs_profile()
    done = [e for e in manifest["runs"] if e["profile"] == chosen.name and e["model"] != "autoencoder"]
    print(f"{len(done)} of {len(experiments.book_runs(chosen))} runs of the {chosen.name} profile "
          f"published in {experiments.PUBLISHED_DIR} "
          f"({manifest['profiles'][chosen.name]['dataset']['description']})")
    return 0


def _curve_options(add) -> None:
    add("--points", nargs="+", default=None, metavar="POINT",
        help=f"points to train and publish (default: every missing one of "
             f"{[p.name for p in curve.CURVE]})")
    add("--jobs", type=processes_int, default=2,
        help="training processes, one torch thread each (default 2)")
    add("--gpu", action="store_true",
        help="on a CUDA GPU: generate the data with every core, hold the network's clips on the "
             "GPU and train there (the autoencoder too); make curve-gpu")
    add("--table", action="store_true", help="instead: print the published curve")
    add("--quiet", action="store_true", help="no progress bars")


def _curve(args) -> int:
    if not args.table:
        done = curve.publish_curve(args.points, _workers(args.gpu, args.jobs),
                                   progress=not args.quiet)
        print(f"published {len(done)} point(s) into {curve.EVIDENCE_DIR}: {done}")
    table = curve.curve_table()
    pd.set_option("display.width", 200)
    print("average AUC over the development IDs in % (± bootstrap SE); gap: network minus "
          "autoencoder, ± SE of the paired difference")
    print(table.round(2).to_string() if not table.empty else "no point published yet")
    return 0


def _student_options(add) -> None:
    add("--book", default="book", type=existing_folder("book folder"),
        help="folder of the chapters, the repository's book/ (default: book)")
    add("--out", default=str(Path("_build") / "student"),
        help="where to write the student edition (default: _build/student)")


def _student(args) -> int:
    written = classroom.student_edition(args.book, args.out)
    print(f"student edition: {len(written)} chapters without solutions in {Path(args.out)}")
    return 0


#: command -> (one-line help, options, run)
COMMANDS = {
    "synth": ("write the synthetic machine-sound dataset in the DCASE layout",
              _synth_options, _synth),
    "download": ("download DCASE 2020 Task 2 (verified, resumable) into the DCASE layout",
                 _download_options, _download),
    "train": ("train STgram / TASTgram on a DCASE-layout data root", _train_options, _train),
    "evaluate": ("score the test clips with a trained run: AUC / pAUC, DCASE files",
                 _evaluate_options, _evaluate),
    "table": ("print runs in the layout of the paper's tables, beside its numbers",
              _table_options, _table),
    "bench": ("time TASTgram training and evaluation (ms per clip) on this machine",
              _bench_options, _bench),
    "runs": ("train the book's runs of chapters 8-11 and publish their results (make runs)",
             _runs_options, _runs),
    "curve": ("train and publish the learning curve of the two reference models (make curve)",
              _curve_options, _curve),
    "student": ("write the student edition: the chapters without their solutions",
                _student_options, _student),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block only with --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Anomalous sound detection with Noisy-ArcMix: data, training, evaluation.")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, (help_text, options, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        options(sub.add_argument)
        sub.set_defaults(_run=run, _parser=sub)
    return parser


def _option_names(parser: argparse.ArgumentParser) -> dict:
    """dest -> the option string that sets it (``num_epochs`` -> ``--epochs``)."""
    names = {}
    for action in parser._actions:
        if action.option_strings:
            names[action.dest] = action.option_strings[0]
        elif action.dest not in ("help", argparse.SUPPRESS):
            names[action.dest] = action.metavar or action.dest.upper()
    return names


def _message(err: BaseException, parser: argparse.ArgumentParser) -> str:
    """The error in one line, naming the command-line option where the library names a field."""
    if isinstance(err, runtime.DiskFull):  # asdlib's own message names the folder and the file
        return err.strerror
    if isinstance(err, OSError) and err.errno in runtime.DISK_FULL:  # a write outside asdlib's
        where = f" ({err.filename})" if err.filename else ""
        return (f"no space left on the disk{where}: free some space or choose another folder "
                f"(--out, ${runtime.HOME_VAR}), then run the same command again (what was "
                "finished is kept)")
    if isinstance(err, OSError) and err.filename and err.strerror:  # from the system
        return f"cannot use {err.filename}: {err.strerror}"
    text = str(err)
    names = _option_names(parser)
    match = re.match(r"^(\w+)(:| must| must be)", text)
    if match and match.group(1) in names:
        text = names[match.group(1)] + text[len(match.group(1)):]
    return text


def _one_line_warnings(command: str):
    """Warnings of the command line: one line each, without the source line of asdlib."""
    def format_warning(message, category, filename, lineno, line=None) -> str:
        return f"{command}: warning: {message}\n"

    return format_warning


def main(argv=None) -> int:
    """Run ``python -m asdlib ARGS``; returns the exit status."""
    args = build_parser().parse_args(argv)
    command = f"{PROG} {args.command}"
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warnings(command)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted; what was finished is kept, run the same command again "
              "to resume", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        print(f"{command}: error: {_message(err, args._parser)}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning
