"""Time one TASTgram training step and one evaluation forward, in ms per clip.

Training step: model in train mode, mix the batch (one lambda ~ Beta(0.5, 0.5), one
permutation), forward through `model.embed`, the Noisy-ArcMix loss, backward and an AdamW
step. Evaluation: model in eval mode, `torch.inference_mode()`, `model(wav, logmel, labels)`.
The log-Mels are computed once beforehand, as in the authors' training (they hold every
log-Mel in RAM), so the timings cover the network only.

Prints figures; it is not a test. Examples:

    python benchmarks/bench_train_step.py --threads 2
    python benchmarks/bench_train_step.py --threads 2 --channels-last
    python benchmarks/bench_train_step.py --threads 2 --compile --seconds 2 --batch-sizes 16
    python benchmarks/bench_train_step.py --threads 2 --malloc-reuse

`--malloc-reuse` restarts the script with glibc's mmap disabled (`MALLOC_MMAP_MAX_=0`) and a
huge trim threshold: freed blocks stay in the heap and are reused, instead of every large
activation (tens of MB for 10 s clips) being mapped fresh from the kernel and page-faulted
in on each step. Launching a training run with the same two variables has the same effect.
"""

import argparse
import os
import statistics
import sys
import time

import torch

from asdlib.features import LogMel
from asdlib.losses import mix_batch, noisy_arcmix_loss
from asdlib.models import TASTgramNet, count_parameters

SAMPLE_RATE = 16000
NUM_CLASSES = 41


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the sub-networks")
    parser.add_argument(
        "--malloc-reuse", action="store_true", help="restart with glibc mmap off (see above)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median shown)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args()


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, repeats, warmup, device):
    """Median wall time of `fn()` in seconds."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_model(num_samples, device, channels_last, compile_model):
    model = TASTgramNet(NUM_CLASSES, num_samples=num_samples).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        # Compile the two networks in place (parameter names unchanged); the input checks of
        # `ASDNet` stay in eager mode
        model.tgramnet.compile()
        model.mobilefacenet.compile()
    return model


# glibc malloc settings of --malloc-reuse: never mmap, never give the heap back to the kernel
MALLOC_REUSE_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def main():
    args = parse_args()
    if args.malloc_reuse and os.environ.get("MALLOC_MMAP_MAX_") != "0":
        # glibc reads these variables at start-up only: restart the interpreter with them
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_REUSE_ENV})
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device={device} threads={torch.get_num_threads()} channels_last={args.channels_last} "
        f"compile={args.compile} malloc_reuse={os.environ.get('MALLOC_MMAP_MAX_') == '0'} "
        f"repeats={args.repeats} torch={torch.__version__}"
    )
    # Other processes on the machine distort the timings: show how busy it is
    print(f"load average (1 min) before the run: {os.getloadavg()[0]:.2f}, cpus: {os.cpu_count()}")
    logmel_fn = LogMel().to(device)
    generator = torch.Generator().manual_seed(2023)
    print(f"{'clip':>5} {'batch':>5} {'train ms/clip':>14} {'eval ms/clip':>13}")
    for seconds in args.seconds:
        num_samples = int(seconds * SAMPLE_RATE)
        torch.manual_seed(2023)
        model = build_model(num_samples, device, args.channels_last, args.compile)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for batch in args.batch_sizes:
            # Random clips and their log-Mels, computed once: [batch, samples], [batch, 128, frames]
            wav = 0.1 * torch.randn(batch, num_samples, generator=generator).to(device)
            with torch.no_grad():
                logmel = logmel_fn(wav)
            labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator).to(device)

            def train_step():
                model.train()
                wav_mix, logmel_mix, y_a, y_b, lam = mix_batch(wav, logmel, labels)
                embedding = model.embed(wav_mix, logmel_mix)
                loss = noisy_arcmix_loss(embedding, model.arcface.weight, y_a, y_b, lam)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            def eval_forward():
                model.eval()
                with torch.inference_mode():
                    model(wav, logmel, labels)

            # BatchNorm cannot train on a batch of one clip: eval only
            train = "-"
            if batch > 1:
                seconds_per_step = time_it(train_step, args.repeats, args.warmup, device)
                train = f"{1000 * seconds_per_step / batch:.1f}"
            seconds_per_eval = time_it(eval_forward, args.repeats, args.warmup, device)
            print(
                f"{seconds:>4g}s {batch:>5} {train:>14} {1000 * seconds_per_eval / batch:>13.1f}",
                flush=True,
            )
        print(f"  {seconds:g}s model: {count_parameters(model):,} parameters (no fc_out)")


if __name__ == "__main__":
    main()
