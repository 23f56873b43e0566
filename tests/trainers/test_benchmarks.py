"""The training benchmarks' command lines."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_train_iteration_needs_at_least_one_iteration():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_iteration.py"), "--iterations", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2  # argparse's usage error, before any training
    assert "--iterations: must be at least 1, got 0" in done.stderr
