"""The README's main job: examples/lenet.py classifies the held-out digits."""

import os
import re
import subprocess
import sys
from pathlib import Path

import clnn

ROOT = Path(__file__).resolve().parents[1]


def test_lenet_example_reaches_95_percent():
    # the clnn under test, installed or not
    path = [str(Path(clnn.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "lenet.py")], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    accuracy = float(re.search(r"accuracy: ([\d.]+)%", done.stdout).group(1))
    assert accuracy >= 95.0
    assert "placement plan:" in done.stdout and "latency:" in done.stdout
    assert done.stdout.count("(is ") == 5  # five digits drawn with their labels


def test_example_data_is_small():
    assert (ROOT / "examples" / "data" / "lenet_digits.npz").stat().st_size < 1_000_000
