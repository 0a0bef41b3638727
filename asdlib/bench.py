"""
Benchmarks: how fast TASTgram trains and scores on this machine

Chapter 11 of the book quotes these figures. `python -m asdlib bench` prints, for 2 s and 10 s
clips and batches of 1, 16 and 64 clips, on the current device:

- **train ms/clip**: one `asdlib.loop.train_step` (the step the trainer runs), per clip: the
  log-Mels of the batch computed on the device, the batch mixed (one lambda, one permutation),
  `embed`, the Noisy-ArcMix loss, backward and an AdamW step. A batch of one clip cannot train
  (BatchNorm): shown as "-".
- **net ms/clip**: the same step with the log-Mels computed beforehand, as when every log-Mel is
  held in RAM (the authors' loader): the network alone.
- **eval ms/clip**: log-Mel + forward in eval mode under `torch.inference_mode()`, per clip.

Two set-ups, both float32 with the same architecture and maths, both asdlib's code:

- default: the set-up of `asdlib.train`: channels-last (NHWC) memory layout (`models.speed_up`)
  and AdamW with `foreach=True` (one update over all tensors);
- `--plain`: asdlib with PyTorch's defaults instead: NCHW layout, per-tensor AdamW. This is NOT
  the authors' code; it shows what the two speed settings are worth. (Comparing with the
  authors' own implementation needs their code, which asdlib does not ship.)

`--reuse-freed-memory` adds glibc's malloc setting of `asdlib.runtime.reuse_freed_memory`
(process-wide, so only when asked), `--compile` adds `torch.compile` of the two sub-networks
(slow to start: tens of seconds on a CPU), `--threads` sets torch's intra-op threads. The figures
are medians over `--repeats` runs after `--warmup` untimed runs; programs sharing the cores make
them noisy, so the conditions (threads, load average) are printed with them. These are figures,
not tests.

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

from asdlib import loop, models, profiles, runtime
from asdlib.profiles import TrainConfig

__all__ = ["LEVERS", "bench", "levers", "time_it"]


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
          plain: bool = False, compile_model: bool = False, repeats: int = 3,
          warmup: int = 1, num_classes: int = 41, cpu_time: bool = False, printer=print) -> list:
    """Time training and evaluation of TASTgram; print one line per (clip length, batch).

    Args:
        seconds: clip lengths in seconds.
        batch_sizes: clips per batch.
        device: "cpu", "cuda", ... (default: `asdlib.runtime.device()`).
        threads: torch intra-op threads (default: torch's); this sets them for the process.
        plain: PyTorch's default settings instead of the trainer's (see the module docstring).
        compile_model: `torch.compile` the Tgram network and the MobileFaceNet.
        repeats, warmup: timed and untimed runs per figure.
        num_classes: classes of the ArcFace head (41: DCASE 2020 Task 2).
        cpu_time: report CPU time (all threads of this process) instead of wall time.
        printer: where the lines go.

    Returns:
        A list of dicts: seconds, batch, train_ms, net_ms, eval_ms (ms per clip; None where
        a batch of one cannot train).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    device = runtime.device(device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    setup = "plain (PyTorch defaults)" if plain else "ours (asdlib.train)"
    malloc = runtime.freed_memory_reused()
    printer(f"TASTgram, {num_classes} classes | set-up: {setup}: channels_last={not plain} "
            f"foreach_adamw={not plain} malloc_reuse={malloc} compile={compile_model}")
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
        config = TrainConfig(seconds=clip_seconds, model="tastgram", mode="noisy_arcmix")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(2023)
            model = config.build_model(num_classes)
        model = models.speed_up(model.to(device), channels_last=not plain,
                               compile_model=compile_model)
        logmel_fn = config.build_logmel().to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=not plain)
        for batch in batch_sizes:
            # Random clips: [batch, samples]; their log-Mels for the "net" column
            wav = (0.1 * torch.randn(batch, config.num_samples, generator=generator)).to(device)
            labels = torch.randint(0, num_classes, (batch,), generator=generator).to(device)
            with torch.no_grad():
                logmel_fixed = logmel_fn(wav)  # [batch, 128, frames]

            def step(front_end):
                model.train()
                loop.train_step(model, optimizer, wav, labels, mode=config.mode,
                                logmel_fn=front_end, alpha=config.alpha, generator=generator)

            def evaluate():
                model.eval()
                with torch.inference_mode():
                    model(wav, logmel_fn(wav), labels)

            train_ms = net_ms = None
            if batch > 1:
                train_ms = 1000 * time_it(lambda: step(logmel_fn), repeats, warmup, device, clock) / batch
                net_ms = 1000 * time_it(lambda: step(lambda _: logmel_fixed), repeats, warmup,
                                        device, clock) / batch
            eval_ms = 1000 * time_it(evaluate, repeats, warmup, device, clock) / batch
            rows.append({"seconds": clip_seconds, "batch": batch, "train_ms": train_ms,
                         "net_ms": net_ms, "eval_ms": eval_ms})
            train_text = "-" if train_ms is None else f"{train_ms:.1f}"
            net_text = "-" if net_ms is None else f"{net_ms:.1f}"
            printer(f"{clip_seconds:>4g}s {batch:>5} {train_text:>14} {net_text:>12} {eval_ms:>13.1f}")
        printer(f"  {clip_seconds:g} s model: {models.count_parameters(model):,} parameters")
    return rows


#: The speed levers `levers` times, each against the trainer's default set-up (float32,
#: channels-last, foreach AdamW, log-Mel computed in every step): name -> settings.
LEVERS = {
    "default (float32, channels-last)": {},
    "NCHW instead of channels-last": {"channels_last": False},
    "bf16 autocast, every layer": {"bf16": True, "islands": False},
    "bf16, float32 islands": {"bf16": True},
    "log-Mel once per clip": {"logmel_once": True},
    "bf16 islands + log-Mel once": {"bf16": True, "logmel_once": True},
}


def levers(sizes=("book", "paper"), batch: int | None = None, rounds: int = 5, warmup: int = 1,
           threads: int | None = None, num_classes: int | None = None, cpu_time: bool = False,
           printer=print) -> list:
    """Time one training step of every lever of `LEVERS` side by side, in one process.

    For each profile size (clip length, mels, batch; STgram's and TASTgram's shared backbone is
    timed as TASTgram), every lever gets its own copy of the same network, and the levers take
    turns, round after round (A B C ... A B C ...), so that a machine whose speed drifts slows
    them alike: quote the ratios, not the milliseconds. "log-Mel once per clip" feeds log-Mels
    computed beforehand (what a log-Mel cache would give); "bf16" is CPU or CUDA autocast;
    "float32 islands" keeps `asdlib.models.float32_islands` in float32. With `cpu_time`, the
    CPU time of this process is measured instead of wall time: on a machine whose cores other
    programs keep busy, it is what the step costs, not how long it waited.

    Returns:
        One dict per (size, lever): size, lever, ms_per_clip, clips_per_s, ratio.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    device = runtime.device(None)
    printer(f"levers of one training step (TASTgram, Noisy-ArcMix), {device}, "
            f"{torch.get_num_threads()} threads, native bf16: {runtime.native_bf16()}, "
            f"{runtime.cpu_model()}, torch {torch.__version__}; median of {rounds} interleaved "
            f"rounds after {warmup}, {'CPU' if cpu_time else 'wall'} time")
    clock = time.process_time if cpu_time else time.perf_counter
    rows = []
    generator = torch.Generator().manual_seed(2023)
    for size in sizes:
        profile = profiles.get_profile(size)
        config = TrainConfig.from_profile(profile)
        clips = batch or config.batch_size
        classes = num_classes or (41 if profile.ids == "all" else 23)
        wav = 0.1 * torch.randn(clips, config.num_samples, generator=generator)
        labels = torch.randint(0, classes, (clips,), generator=generator)
        logmel_fn = config.build_logmel()
        with torch.no_grad():
            logmel_fixed = logmel_fn(wav)
        steps = {}
        for name, lever in LEVERS.items():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(2023)
                model = config.build_model(classes)
            amp_dtype = torch.bfloat16 if lever.get("bf16") else None
            model = models.speed_up(model.to(device), lever.get("channels_last", True),
                                   amp_dtype=amp_dtype if lever.get("islands", True) else None,
                                   device_type=device.type)
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=True)
            front_end = (lambda _: logmel_fixed) if lever.get("logmel_once") else logmel_fn

            def step(model=model, optimizer=optimizer, front_end=front_end, amp_dtype=amp_dtype):
                model.train()
                loop.train_step(model, optimizer, wav, labels, mode=config.mode,
                                logmel_fn=front_end, alpha=config.alpha, generator=generator,
                                amp_dtype=amp_dtype)

            steps[name] = step
        times = {name: [] for name in steps}
        for round_ in range(warmup + rounds):
            for name, step in steps.items():
                started = clock()
                step()
                if round_ >= warmup:
                    times[name].append(clock() - started)
        base = statistics.median(times[next(iter(LEVERS))])
        printer(f"\n{size}: {config.seconds:g} s clips, {config.n_mels} mels, batch {clips}, "
                f"{classes} classes")
        printer(f"{'lever':<36} {'ms/clip':>8} {'clips/s':>8} {'x default':>10}")
        for name, values in times.items():
            median = statistics.median(values)
            rows.append({"size": size, "lever": name, "ms_per_clip": 1000 * median / clips,
                         "clips_per_s": clips / median, "ratio": median / base})
            printer(f"{name:<36} {1000 * median / clips:>8.1f} {clips / median:>8.1f} "
                    f"{median / base:>9.2f}x")
    return rows
