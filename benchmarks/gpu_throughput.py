"""Training steps per second on one GPU when several runs share it, as `make runs-gpu` trains.

The GPU route (`python -m asdlib runs --gpu`) trains several runs at a time on one GPU, each in
its own process with one torch thread. At the book's sizes (2 s clips, 64 mels, batch 16) a step
is hundreds of small kernels, so one process keeps the GPU mostly idle while Python launches
them; several processes fill it. This benchmark measures how far: for each number of processes
it starts them, lets each train its network (the evidence profile's recipe: bfloat16 autocast,
channels-last, foreach AdamW, one loss read back per step, as `asdlib.loop.train_one_epoch` does)
on random clips held on the GPU, and counts the steps all of them take in the same
`--seconds`. It prints steps/s per process and in all, and what that makes of the evidence
profile's published runs: the epochs of every run in `asdlib/published/MANIFEST.json` times its
steps per epoch, over the aggregate rate (an estimate: the route also generates the data,
validates every epoch and scores the test clips).

    python benchmarks/gpu_throughput.py --procs 1 8 16 --seconds 10

Needs a CUDA GPU (``--device cpu`` only tries the script); nothing is written.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time

import torch

from asdlib import experiments, loop, models, profiles, runtime
from asdlib.profiles import TrainConfig

NUM_CLASSES = 23  # the development IDs


def _worker(device, model_name, mode, seconds, barrier, results) -> None:
    torch.set_num_threads(1)
    device = torch.device(device)
    config = TrainConfig.from_profile("evidence", model=model_name, mode=mode)
    torch.manual_seed(0)
    amp_dtype = runtime.autocast_dtype(config.amp, device)
    model = models.speed_up(config.build_model(NUM_CLASSES).to(device), True, False, amp_dtype,
                            device.type)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, foreach=True)
    step = loop.Step(model, optimizer, config.mode, config.build_logmel().to(device),
                     alpha=config.alpha, device=device, amp_dtype=amp_dtype)
    generator = torch.Generator().manual_seed(0)
    # [batch, samples] and [batch], held on the GPU like the route's clips
    wav = (0.1 * torch.randn(config.batch_size, config.num_samples)).to(device)
    labels = torch.randint(0, NUM_CLASSES, (config.batch_size,)).to(device)
    model.train()
    for _ in range(20):  # warm-up: cuDNN's choices, the caching allocator
        float(loop.train_step(step, wav, labels, generator))
    _synchronize(device)
    barrier.wait()
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        float(loop.train_step(step, wav, labels, generator))  # one read-back per step
        steps += 1
    _synchronize(device)
    results.put(steps / (time.perf_counter() - started))


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(processes: int, model_name: str, mode: str, seconds: float, device="cuda") -> list:
    """Steps per second of each of `processes` processes training at the same time."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_worker, args=(device, model_name, mode, seconds, barrier, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    rates = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    return rates


def evidence_steps() -> int:
    """Training steps of the evidence profile's published runs (their epochs x steps/epoch)."""
    manifest = json.loads((experiments.PUBLISHED_DIR / "MANIFEST.json").read_text())
    profile = profiles.get_profile("evidence")
    dev_ids = 23
    train_clips = round(profile.train_per_id * dev_ids * (1 - profile.val_fraction))
    per_epoch = math.ceil(train_clips / profile.batch_size)
    return sum(e["epochs"] * per_epoch for e in manifest["runs"]
               if e["profile"] == "evidence" and e["model"] != "autoencoder")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--model", default="tastgram")
    parser.add_argument("--mode", default="noisy_arcmix")
    parser.add_argument("--device", default="cuda", help="cuda (cpu: only to try the script)")
    args = parser.parse_args()
    try:
        device = runtime.device(args.device)
    except ValueError as err:  # no CUDA GPU here: one line, not a traceback
        raise SystemExit(f"gpu_throughput.py: {err}") from None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else runtime.cpu_model()
    print(f"{name}, torch {torch.__version__}, "
          f"{multiprocessing.cpu_count()} cores; {args.model} {args.mode}, evidence recipe")
    steps = evidence_steps()
    print(f"{'processes':>9} {'steps/s each':>13} {'steps/s in all':>15} {'evidence runs (min)':>20}")
    for processes in args.procs:
        rates = measure(processes, args.model, args.mode, args.seconds, args.device)
        total = sum(rates)
        print(f"{processes:>9} {total / processes:>13.1f} {total:>15.1f} "
              f"{steps / total / 60:>20.1f}", flush=True)
    print(f"({steps} training steps in the evidence profile's published runs)")


if __name__ == "__main__":
    main()
