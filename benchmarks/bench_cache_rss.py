"""Peak RAM of building and reading the clip cache, for 1k and 8k synthetic 10 s clips.

The claim checked (chapter 1): the cache's peak resident memory does not grow with the number
of clips, unlike loading every clip as float32 (0.64 MB per 10 s clip).

    .venv/bin/python benchmarks/bench_cache_rss.py                 # 1000 and 8000 clips
    .venv/bin/python benchmarks/bench_cache_rss.py --sizes 200 400 --seconds 2

The wav files are written once (white noise, ``asdlib.audio.write_clip``) in a temporary folder;
each size then runs in its own subprocess so that the peaks are separate. Peak RSS is
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that subprocess (Linux: KiB), read after the
imports, after the build and after one pass through a ``DataLoader`` (``num_workers=0``, so
every byte read is counted in this one process).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_clips(folder: Path, count: int, seconds: float) -> list:
    """``count`` white-noise clips in the DCASE layout (fan/train), one at a time."""
    import numpy as np
    from tqdm.auto import tqdm

    from asdlib.audio import write_clip

    rng = np.random.default_rng(0)
    num_samples = int(seconds * 16000)
    paths = []
    for n in tqdm(range(count), desc="writing wav files", unit="clip"):
        path = folder / "fan" / "train" / f"normal_id_00_{n:08d}.wav"
        if not path.exists():
            write_clip(path, rng.uniform(-0.3, 0.3, num_samples).astype(np.float32))
        paths.append(path)
    return paths


def child(data: Path, count: int, seconds: float, cache_dir: Path) -> dict:
    """Build the cache of the first ``count`` clips and read it once; return the figures."""
    import torch
    from torch.utils.data import DataLoader

    from asdlib import cache, dcase

    after_imports = peak_rss_mb()
    index = dcase.build_index(data).iloc[:count]
    num_samples = int(seconds * 16000)
    start = time.perf_counter()
    path = cache.build_cache(index, cache_dir, num_samples, progress=False)
    build_s = time.perf_counter() - start
    after_build = peak_rss_mb()
    dataset = cache.open_cache(path)
    start, total = time.perf_counter(), 0.0
    for wav, label, row in DataLoader(dataset, batch_size=64, shuffle=True, num_workers=0):
        total += float(wav.abs().mean())  # touch every sample
    read_s = time.perf_counter() - start
    return {
        "clips": count,
        "cache_gb": (path / "wavs.npy").stat().st_size / 1e9,
        "float32_in_ram_gb": count * num_samples * 4 / 1e9,
        "rss_after_imports_mb": round(after_imports),
        "rss_peak_build_mb": round(after_build),
        "rss_peak_build_and_read_mb": round(peak_rss_mb()),
        "build_s": round(build_s, 1),
        "read_s": round(read_s, 1),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 8000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the wav files here (default: a temporary folder)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:  # one measurement, in its own process
        figures = child(args.workdir / "data", args.child, args.seconds,
                        args.workdir / f"cache-{args.child}")
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        write_clips(work / "data", max(args.sizes), args.seconds)
        rows = []
        for size in args.sizes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--seconds", str(args.seconds),
                 "--workdir", str(work)], check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'clips':>6} {'cache GB':>9} {'float32 GB':>11} {'RSS imports MB':>15} "
          f"{'RSS build MB':>13} {'RSS build+read MB':>18} {'build s':>8} {'read s':>7}")
    for r in rows:
        print(f"{r['clips']:>6} {r['cache_gb']:>9.2f} {r['float32_in_ram_gb']:>11.2f} "
              f"{r['rss_after_imports_mb']:>15} {r['rss_peak_build_mb']:>13} "
              f"{r['rss_peak_build_and_read_mb']:>18} {r['build_s']:>8} {r['read_s']:>7}")


if __name__ == "__main__":
    main()
