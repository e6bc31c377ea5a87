"""The clnn command line: devices, run, bench, help and errors."""

import subprocess
import sys

import numpy as np
import pytest

import clnn
from clnn.cli import main

from helpers import rand, rel_err


def test_run_writes_the_output(tmp_path, rng, capsys, devices):
    x = rand(rng, (1, 1, 28, 28))
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "lenet5", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--devices", devices[0].id]) == 0
    y = np.load(tmp_path / "y.npy")
    assert rel_err(y, clnn.models.lenet5().reference({"input": x})[0]) < 1e-4
    assert "fc3: shape [1, 10]" in capsys.readouterr().out


def test_run_takes_the_batch_of_its_input(tmp_path, rng, capsys, devices):
    model = clnn.models.lenet5()
    proto = model.to_onnx()
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    (tmp_path / "lenet.onnx").write_bytes(proto.SerializeToString())
    x = rand(rng, (3, 1, 28, 28))
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "lenet.onnx"), "--input", f"input={tmp_path / 'x.npy'}",
                 "--output", str(tmp_path / "y.npy"), "--devices", devices[0].id]) == 0
    expected = clnn.models.lenet5(batch=3).reference({"input": x})[0]
    assert rel_err(np.load(tmp_path / "y.npy"), expected) < 1e-4
    assert "fc3: shape [3, 10]" in capsys.readouterr().out


def test_bench_times_each_device_and_the_plan(capsys, devices):
    shares = ",".join(["1"] * len(devices))
    assert main(["bench", "fcnn", "--runs", "2", "--warmup", "1", "--plan", shares]) == 0
    out = capsys.readouterr().out
    for d in devices:
        assert d.id in out
    assert f"plan {shares}" in out and " ms " in out


def test_errors_exit_2_with_a_message(capsys):
    assert main(["bench", "no-such-model"]) == 2
    assert "neither a zoo model" in capsys.readouterr().err
    assert main(["devices", "--devices", "no-such-device"]) == 2
    assert "matches no device" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["devices", "run", "bench"])
def test_every_command_has_help(command):
    done = subprocess.run([sys.executable, "-m", "clnn", command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: clnn" in done.stdout
