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
are medians over `--repeats` runs after `--warmup` untimed runs (`Timing`); programs sharing the
cores make them noisy, so the conditions (threads, load average) are printed with them. These are
figures, not tests.

On a machine whose cores are busy with other programs, start Python with
`OMP_WAIT_POLICY=PASSIVE`: by default OpenMP threads spin while they wait for each other, and
when one of them is not scheduled every small parallel region waits a whole time slice (a
2-thread training step can then take several times as long).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import torch

from asdlib import loop, models, profiles, runtime
from asdlib.profiles import TrainConfig

__all__ = ["LEVERS", "NUM_CLASSES", "Timing", "bench", "levers", "time_it"]

#: Classes of the ArcFace head that `bench` times (41: the machine IDs of DCASE 2020 Task 2).
NUM_CLASSES = 41


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


@dataclasses.dataclass(frozen=True)
class Timing:
    """How `bench` and `levers` measure.

    Attributes:
        repeats: timed runs per figure, whose median is reported (`levers`: rounds).
        warmup: untimed runs first.
        cpu_time: the CPU time of this process (all its threads) instead of wall time.
        threads: torch intra-op threads (None: torch's); set for the whole process.
    """

    repeats: int = 3
    warmup: int = 1
    cpu_time: bool = False
    threads: int | None = None

    @property
    def clock(self):
        """`time.process_time` with `cpu_time`, else `time.perf_counter`."""
        return time.process_time if self.cpu_time else time.perf_counter


def bench(seconds=(2.0, 10.0), batch_sizes=(1, 16, 64), device=None, timing: Timing | None = None,
          plain: bool = False, compile_model: bool = False) -> list:
    """Time training and evaluation of TASTgram; print one line per (clip length, batch).

    Args:
        seconds: clip lengths in seconds.
        batch_sizes: clips per batch.
        device: "cpu", "cuda", ... (default: `asdlib.runtime.device()`).
        timing: repeats, warm-up, clock and threads (`Timing`; default `Timing()`).
        plain: PyTorch's default settings instead of the trainer's (see the module docstring).
        compile_model: `torch.compile` the Tgram network and the MobileFaceNet.

    Returns:
        A list of dicts: seconds, batch, train_ms, net_ms, eval_ms (ms per clip; None where
        a batch of one cannot train).
    """
    timing = timing or Timing()
    with runtime.torch_threads(timing.threads):  # the caller's count comes back
        device = runtime.device(device)
        _print_conditions(device, timing, plain, compile_model)
        generator = torch.Generator().manual_seed(2023)
        rows = []
        for clip_seconds in seconds:
            config = TrainConfig(seconds=clip_seconds, model="tastgram", mode="noisy_arcmix")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(2023)
                model = config.build_model(NUM_CLASSES)
            model = models.speed_up(model.to(device), channels_last=not plain,
                                    compile_model=compile_model)
            optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=not plain)
            step = loop.Step(model, optimizer, config.mode, config.build_logmel().to(device),
                             alpha=config.alpha, device=device)
            for batch in batch_sizes:
                row = {"seconds": clip_seconds, "batch": batch,
                       **_time_batch(step, config.num_samples, batch, generator, timing)}
                rows.append(row)
                train_text = "-" if row["train_ms"] is None else f"{row['train_ms']:.1f}"
                net_text = "-" if row["net_ms"] is None else f"{row['net_ms']:.1f}"
                print(f"{clip_seconds:>4g}s {batch:>5} {train_text:>14} {net_text:>12} "
                      f"{row['eval_ms']:>13.1f}")
            print(f"  {clip_seconds:g} s model: {models.count_parameters(model):,} parameters")
        return rows


def _print_conditions(device, timing: Timing, plain: bool, compile_model: bool) -> None:
    """The lines above `bench`'s table: the set-up and what the figures depend on."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    setup = "plain (PyTorch defaults)" if plain else "ours (asdlib.train)"
    malloc = runtime.freed_memory_reused()
    print(f"TASTgram, {NUM_CLASSES} classes | set-up: {setup}: channels_last={not plain} "
          f"foreach_adamw={not plain} malloc_reuse={malloc} compile={compile_model}")
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "default")
    print(f"device={device} threads={torch.get_num_threads()} OMP_WAIT_POLICY={wait_policy} | "
          f"load average {load:.1f} on {os.cpu_count()} cores | median of {timing.repeats} after "
          f"{timing.warmup} warm-up | torch {torch.__version__}")
    print(f"times: {'CPU time of this process' if timing.cpu_time else 'wall time'}")
    print(f"{'clip':>5} {'batch':>5} {'train ms/clip':>14} {'net ms/clip':>12} {'eval ms/clip':>13}")


def _train_once(step: loop.Step, wav, labels, generator) -> None:
    """One `asdlib.loop.train_step`, the model in train mode (`evaluate` leaves it in eval)."""
    step.model.train()
    loop.train_step(step, wav, labels, generator)


def _time_batch(step: loop.Step, num_samples: int, batch: int, generator, timing: Timing) -> dict:
    """`train_ms`, `net_ms` and `eval_ms` (per clip) of `step` on a batch of random clips."""
    device = step.device
    # Random clips: [batch, samples]; their log-Mels for the "net" column
    wav = (0.1 * torch.randn(batch, num_samples, generator=generator)).to(device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator).to(device)
    with torch.no_grad():
        logmel_fixed = step.logmel_fn(wav)  # [batch, 128, frames]
    # The same model and optimizer, fed the log-Mels computed above
    net_step = dataclasses.replace(step, logmel_fn=lambda _: logmel_fixed)

    def evaluate():
        step.model.eval()
        with torch.inference_mode():
            step.model(wav, step.logmel_fn(wav), labels)

    def ms_per_clip(fn):
        return 1000 * time_it(fn, timing.repeats, timing.warmup, device, timing.clock) / batch

    train_ms = net_ms = None
    if batch > 1:  # BatchNorm cannot train on one clip
        train_ms = ms_per_clip(lambda: _train_once(step, wav, labels, generator))
        net_ms = ms_per_clip(lambda: _train_once(net_step, wav, labels, generator))
    return {"train_ms": train_ms, "net_ms": net_ms, "eval_ms": ms_per_clip(evaluate)}


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


def levers(sizes=("book", "paper"), batch: int | None = None, timing: Timing | None = None) -> list:
    """Time one training step of every lever of `LEVERS` side by side, in one process.

    For each profile size (clip length, mels, batch; STgram's and TASTgram's shared backbone is
    timed as TASTgram, with the profile's number of machine IDs), every lever gets its own copy
    of the same network, and the levers take turns, round after round (A B C ... A B C ...), so
    that a machine whose speed drifts slows them alike: quote the ratios, not the milliseconds.
    "log-Mel once per clip" feeds log-Mels computed beforehand (what a log-Mel cache would
    give); "bf16" is CPU or CUDA autocast; "float32 islands" keeps
    `asdlib.models.float32_islands` in float32. With `timing.cpu_time`, the CPU time of this
    process is measured instead of wall time: on a machine whose cores other programs keep
    busy, it is what the step costs, not how long it waited.

    Args:
        sizes: profile names (`asdlib.profiles.PROFILES`).
        batch: clips per step (default: each profile's batch size).
        timing: `timing.repeats` rounds after `timing.warmup` (default `Timing(repeats=5)`).

    Returns:
        One dict per (size, lever): size, lever, ms_per_clip, clips_per_s, ratio.
    """
    timing = timing or Timing(repeats=5)
    with runtime.torch_threads(timing.threads):  # the caller's count comes back
        device = runtime.device(None)
        print(f"levers of one training step (TASTgram, Noisy-ArcMix), {device}, "
              f"{torch.get_num_threads()} threads, native bf16: {runtime.native_bf16()}, "
              f"{runtime.cpu_model()}, torch {torch.__version__}; median of {timing.repeats} "
              f"interleaved rounds after {timing.warmup}, {'CPU' if timing.cpu_time else 'wall'} time")
        rows = []
        generator = torch.Generator().manual_seed(2023)
        for size in sizes:
            profile = profiles.get_profile(size)
            config = TrainConfig.from_profile(profile)
            clips = batch or config.batch_size
            classes = 41 if profile.ids == "all" else 23
            # Random clips on the device: [clips, samples], [clips]
            wav = (0.1 * torch.randn(clips, config.num_samples, generator=generator)).to(device)
            labels = torch.randint(0, classes, (clips,), generator=generator).to(device)
            steps = _lever_steps(config, classes, device, wav)
            times = _take_turns({name: (lambda s=s: _train_once(s, wav, labels, generator))
                                 for name, s in steps.items()}, timing)
            base = statistics.median(times[next(iter(LEVERS))])
            print(f"\n{size}: {config.seconds:g} s clips, {config.n_mels} mels, batch {clips}, "
                  f"{classes} classes")
            print(f"{'lever':<36} {'ms/clip':>8} {'clips/s':>8} {'x default':>10}")
            for name, values in times.items():
                median = statistics.median(values)
                rows.append({"size": size, "lever": name, "ms_per_clip": 1000 * median / clips,
                             "clips_per_s": clips / median, "ratio": median / base})
                print(f"{name:<36} {1000 * median / clips:>8.1f} {clips / median:>8.1f} "
                      f"{median / base:>9.2f}x")
        return rows


def _lever_steps(config: TrainConfig, classes: int, device, wav) -> dict:
    """`{lever: loop.Step}`: for every lever of `LEVERS`, its own copy of the same network
    (seeded weights), set up as the lever says, with its own AdamW."""
    logmel_fn = config.build_logmel().to(device)
    with torch.no_grad():
        logmel_fixed = logmel_fn(wav)  # [clips, n_mels, frames]
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
        steps[name] = loop.Step(model, optimizer, config.mode, front_end, alpha=config.alpha,
                                device=device, amp_dtype=amp_dtype)
    return steps


def _take_turns(calls: dict, timing: Timing) -> dict:
    """`{name: [seconds of each timed round]}`: every call once per round, in turn, for
    `timing.warmup` untimed rounds and then `timing.repeats` timed ones."""
    times = {name: [] for name in calls}
    for round_ in range(timing.warmup + timing.repeats):
        for name, call in calls.items():
            started = timing.clock()
            call()
            if round_ >= timing.warmup:
                times[name].append(timing.clock() - started)
    return times
