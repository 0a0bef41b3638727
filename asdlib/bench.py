"""
Benchmarks: how fast TASTgram trains and scores on this machine

Chapter 8 of the book ("Training TASTgram") quotes these figures. `python -m asdlib bench`
prints, for 2 s and 10 s clips and batches of 1, 16 and 64 clips, on the current device:

- **train ms/clip**: one full training step of our loop (`asdlib.train`), per clip: the
  log-Mels of the batch computed on the device, the batch mixed (one lambda, one
  permutation), `embed`, the Noisy-ArcMix loss, backward and an AdamW step. A batch of one
  clip cannot train (BatchNorm): shown as "-".
- **net ms/clip**: the same step with the log-Mels computed beforehand, as when every
  log-Mel is held in RAM (the authors' loader): the network alone, comparable with theirs.
- **eval ms/clip**: log-Mel + forward in eval mode under `torch.inference_mode()`, per clip.

Two set-ups, both float32 with the same architecture and maths:

- default: the set-up of `asdlib.train`: channels-last (NHWC) memory layout, AdamW with
  `foreach=True` (one update over all tensors), and glibc's malloc keeping freed memory
  (`asdlib.train.reuse_freed_memory`; on the CPU);
- `--reference`: the authors' set-up: NCHW layout, per-tensor AdamW, default malloc. Run it
  in its own process (the malloc setting of the default set-up cannot be undone).

`--compile` adds `torch.compile` of the two sub-networks (slow to start: tens of seconds on a
CPU), `--threads` sets torch's intra-op threads. The figures are medians over `--repeats`
runs after `--warmup` untimed runs; programs sharing the cores make them noisy, so the
conditions (threads, load average) are printed with them. These are figures, not tests.

On a machine whose cores are busy with other programs, start Python with
`OMP_WAIT_POLICY=PASSIVE`: by default OpenMP threads spin while they wait for each other, and
when one of them is not scheduled every small parallel region waits a whole time slice (we
measured a 2-thread training step 6x slower than with PASSIVE on the shared 2-core machine).
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from asdlib.layout import SAMPLE_RATE

__all__ = ["add_arguments", "bench", "run", "time_it"]

def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, repeats: int = 3, warmup: int = 1, device=None, clock=time.perf_counter) -> float:
    """Median time of `fn()` in seconds, after `warmup` untimed calls.

    `clock` is `time.perf_counter` (wall time) or `time.process_time` (CPU time of this
    process, all its threads: steadier than wall time when other programs share the cores).
    """
    device = torch.device(device or "cpu")
    for _ in range(warmup):
        fn()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        _synchronize(device)
        times.append(clock() - start)
    return statistics.median(times)


def bench(seconds=(2.0, 10.0), batch_sizes=(1, 16, 64), device=None, threads=None,
          reference: bool = False, compile_model: bool = False, repeats: int = 3,
          warmup: int = 1, num_classes: int = 41, cpu_time: bool = False, printer=print) -> list:
    """Time training and evaluation of TASTgram; print one line per (clip length, batch).

    Args:
        seconds: clip lengths in seconds.
        batch_sizes: clips per batch.
        device: "cpu", "cuda", ... (default: `asdlib.runtime.device()`).
        threads: torch intra-op threads (default: torch's).
        reference: time the authors' set-up instead of ours (see the module docstring).
        compile_model: `torch.compile` the Tgram network and the MobileFaceNet.
        repeats, warmup: timed and untimed runs per figure.
        num_classes: classes of the ArcFace head (41: DCASE 2020 Task 2).
        cpu_time: report CPU time (all threads of this process) instead of wall time.
        printer: where the lines go.

    Returns:
        A list of dicts: seconds, batch, train_ms, net_ms, eval_ms (ms per clip; None where
        a batch of one cannot train).
    """
    from asdlib import runtime
    from asdlib.features import LogMel
    from asdlib.losses import mix_batch, noisy_arcmix_loss
    from asdlib.models import TASTgramNet, count_parameters
    from asdlib.train import reuse_freed_memory, speed_up

    if threads is not None:
        torch.set_num_threads(threads)
    device = runtime.device(device)
    malloc_reuse = False if reference or device.type != "cpu" else reuse_freed_memory()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    setup = "reference (authors')" if reference else "ours (asdlib.train)"
    printer(f"TASTgram, {num_classes} classes | set-up: {setup}: channels_last={not reference} "
            f"foreach_adamw={not reference} malloc_reuse={malloc_reuse} compile={compile_model}")
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "default")
    printer(f"device={device} threads={torch.get_num_threads()} OMP_WAIT_POLICY={wait_policy} | "
            f"load average {load:.1f} on {os.cpu_count()} cores | median of {repeats} after "
            f"{warmup} warm-up | torch {torch.__version__}")
    clock = time.process_time if cpu_time else time.perf_counter
    printer(f"times: {'CPU time of this process' if cpu_time else 'wall time'}")
    printer(f"{'clip':>5} {'batch':>5} {'train ms/clip':>14} {'net ms/clip':>12} {'eval ms/clip':>13}")
    generator = torch.Generator().manual_seed(2023)
    rows = []
    for clip_seconds in seconds:
        num_samples = int(clip_seconds * SAMPLE_RATE)
        torch.manual_seed(2023)
        model = speed_up(TASTgramNet(num_classes, num_samples=num_samples).to(device),
                         channels_last=not reference, compile_model=compile_model)
        logmel_fn = LogMel().to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=not reference)
        for batch in batch_sizes:
            # Random clips: [batch, samples]; their log-Mels for the "net" column
            wav = (0.1 * torch.randn(batch, num_samples, generator=generator)).to(device)
            labels = torch.randint(0, num_classes, (batch,), generator=generator).to(device)
            with torch.no_grad():
                logmel_fixed = logmel_fn(wav)  # [batch, 128, frames]

            def step(with_logmel: bool):
                model.train()
                with torch.no_grad():
                    logmel = logmel_fn(wav) if with_logmel else logmel_fixed
                    wav_mix, logmel_mix, y_a, y_b, lam = mix_batch(wav, logmel, labels,
                                                                   generator=generator)
                embedding = model.embed(wav_mix, logmel_mix)
                loss = noisy_arcmix_loss(embedding, model.arcface.weight, y_a, y_b, lam)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            def evaluate():
                model.eval()
                with torch.inference_mode():
                    model(wav, logmel_fn(wav), labels)

            train_ms = net_ms = None
            if batch > 1:
                train_ms = 1000 * time_it(lambda: step(True), repeats, warmup, device, clock) / batch
                net_ms = 1000 * time_it(lambda: step(False), repeats, warmup, device, clock) / batch
            eval_ms = 1000 * time_it(evaluate, repeats, warmup, device, clock) / batch
            rows.append({"seconds": clip_seconds, "batch": batch, "train_ms": train_ms,
                         "net_ms": net_ms, "eval_ms": eval_ms})
            train_text = "-" if train_ms is None else f"{train_ms:.1f}"
            net_text = "-" if net_ms is None else f"{net_ms:.1f}"
            printer(f"{clip_seconds:>4g}s {batch:>5} {train_text:>14} {net_text:>12} {eval_ms:>13.1f}")
        printer(f"  {clip_seconds:g} s model: {count_parameters(model):,} parameters")
    return rows


def add_arguments(parser) -> None:
    """The options of `python -m asdlib bench`."""
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0],
                        help="clip lengths in seconds (default 2 10)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64],
                        help="batch sizes (default 1 16 64)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--reference", action="store_true",
                        help="the authors' set-up (NCHW, per-tensor AdamW, default malloc) instead of ours")
    parser.add_argument("--compile", action="store_true", help="torch.compile the sub-networks")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="report CPU time instead of wall time (steadier on a shared machine)")


def run(args) -> int:
    """Run `python -m asdlib bench` with parsed arguments."""
    bench(args.seconds, args.batch_sizes, args.device, args.threads, args.reference,
          args.compile, args.repeats, args.warmup, cpu_time=args.cpu_time)
    return 0
