"""Generate synthetic data with an earlier generator version, at today's book-profile counts.

For the calibration record of data/SYNTHETIC.md ("the two numbers per version"): the old
generator code comes from git, the counts are the book profile's of today (100 normal training
clips, 50 + 50 test clips per ID, 2 s, development IDs, data seed 0), so that every version is
compared with the same training recipe (`benchmarks/diagnose.py --data-root OUT`).

    git worktree add /tmp/synth-v1 a2773b3      # the last commit of generator version 1
    git worktree add /tmp/synth-v2 758c651      # the last commit of generator version 2
    PYTHONPATH=/tmp/synth-v1 .venv/bin/python benchmarks/old_generator.py OUT_V1
    .venv/bin/python benchmarks/diagnose.py --data-root OUT_V1

Run it with the old checkout first on PYTHONPATH: it imports whatever `asdlib` comes first and
prints which one, and which generator version, it used.
"""

from __future__ import annotations

import dataclasses
import sys

from asdlib import profiles, synth


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: PYTHONPATH=<old checkout> python benchmarks/old_generator.py OUT",
              file=sys.stderr)
        return 2
    # The old code reads its counts from its own book profile: replace them by today's.
    profiles.PROFILES["book"] = dataclasses.replace(
        profiles.PROFILES["book"], seconds=2.0, ids="dev", train_per_id=100,
        test_normal_per_id=50, test_anomaly_per_id=50)
    print(f"generator version {synth.GENERATOR_VERSION} from {synth.__file__}")
    synth.generate(argv[0], profile="book", seed=0, progress=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
