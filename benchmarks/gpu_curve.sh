#!/usr/bin/env bash
# The GPU route in one sitting, for a GPU machine lent for a limited time (minutes): first how
# fast several runs share the GPU (benchmarks/gpu_throughput.py), then the learning curve's
# missing points with `python -m asdlib curve --gpu`, stopped before a deadline. Whatever is
# finished is published under asdlib/evidence/ as on the CPU; the script copies the published
# points to OUT_DIR (points.tar) and the runs' state (state.tar: checkpoints and history of the
# finished and the unfinished runs, no data), which a later sitting takes back with
# STATE=state.tar so a run the deadline cut short goes on from its last epoch. The data is generated again there
# (seconds with 16 cores; its fingerprint is checked).
#
#   benchmarks/gpu_curve.sh OUT_DIR [SECONDS] [POINT ...]
#
#   SECONDS  the deadline for the curve (default 480)
#   POINT    curve points (default: train3000 train1000-41ids)
#   STATE    optional: a state.tar from an earlier sitting, unpacked into ASDLIB_HOME first
#   ROUTE    how the curve trains (default --gpu; "--jobs 1" tries the script on a CPU)
#
# Back on the development machine: `tar -xf points.tar -C asdlib/evidence`, then
# `python -m asdlib curve --table` checks every file against the manifest, and commit.
set -uo pipefail
out=${1:?usage: benchmarks/gpu_curve.sh OUT_DIR [SECONDS] [POINT ...]}
seconds=${2:-480}
shift $(( $# > 1 ? 2 : 1 ))
points=("$@")
[ ${#points[@]} -gt 0 ] || points=(train3000 train1000-41ids)
route=${ROUTE:---gpu}
cd "$(dirname "$0")/.."
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export ASDLIB_HOME=${ASDLIB_HOME:-/tmp/asdlib-home}
mkdir -p "$ASDLIB_HOME"
if [ -n "${STATE:-}" ]; then
    tar -xf "$STATE" -C "$ASDLIB_HOME" || { echo "STATE: cannot unpack $STATE into $ASDLIB_HOME" >&2; exit 2; }
fi
python3 -c "import asdlib, torch; print('asdlib', asdlib.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" \
    || { echo "asdlib does not import here (missing packages? see README, 'A GPU machine')" >&2; exit 2; }
if [ "$route" = "--gpu" ]; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 benchmarks/gpu_throughput.py --procs 1 8 16 --seconds 10 2>&1 | tee "$out/throughput.txt"
fi
before=$(date +%s)
timeout --signal=INT --kill-after=30 "$seconds" \
    python3 -m asdlib curve $route --points "${points[@]}" 2>&1 | tr '\r' '\n' | grep -v "^ *$" \
    | tee "$out/curve.log" | grep -v "it/s\]$\|clip/s\]$" | tail -n 40
echo "curve: exit ${PIPESTATUS[0]} after $(( $(date +%s) - before )) s"
python3 -m asdlib curve --table 2>&1 | tee "$out/table.txt"
tar -cf "$out/points.tar" -C asdlib/evidence .
# the unfinished runs (their folders end in .partial) and the finished models, without data
(cd "$ASDLIB_HOME" && find runs baseline -maxdepth 1 -mindepth 1 2>/dev/null | tar -cf "$out/state.tar" -T -)
ls -l "$out"
