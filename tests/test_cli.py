"""The clnn command line: devices, run, bench, help and errors."""

import os
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
    shares = ",".join([f"{1 / len(devices):.4f}"] * len(devices))
    assert main(["bench", "fcnn", "--runs", "2", "--warmup", "1", "--plan", shares]) == 0
    out = capsys.readouterr().out
    for d in devices:
        assert d.id in out
    assert f"plan {shares}" in out and " ms " in out


def test_errors_exit_2_with_a_message(capsys, tmp_path):
    assert main(["bench", "no-such-model"]) == 2
    assert "neither a zoo model" in capsys.readouterr().err
    assert main(["run", "lenet5", "--input", str(tmp_path / "missing.npy")]) == 2  # was a raw FileNotFoundError
    err = capsys.readouterr().err
    assert "cannot read input" in err and "missing.npy" in err


def test_devices_marks_what_a_selector_picks_even_nothing(capsys, devices):
    assert main(["devices", "--devices", devices[0].id]) == 0
    out = capsys.readouterr().out
    assert f"* {devices[0].id}" in out
    assert main(["devices", "--devices", "no-such-device"]) == 0  # was an error
    out = capsys.readouterr().out
    assert "*" not in out.split("* =")[0] and "matches no device" in out


def test_run_writes_exactly_the_path_given_and_prints_a_class_per_row(tmp_path, rng, capsys, devices):
    x = rand(rng, (3, 1, 28, 28))
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "lenet5", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "out.txt"),
                 "--devices", devices[0].id]) == 0
    assert not (tmp_path / "out.txt.npy").exists()  # was written there while "wrote out.txt" was said
    y = np.load(tmp_path / "out.txt")
    out = capsys.readouterr().out
    assert f"argmax per row {[int(k) for k in y.argmax(axis=1)]}" in out and "np.int64" not in out


def test_run_refuses_a_batch_the_model_does_not_have(tmp_path, rng, capsys, devices):
    clnn.models.lenet5(batch=4).save(tmp_path / "fixed.onnx")
    np.save(tmp_path / "x.npy", rand(rng, (4, 1, 28, 28)))
    assert main(["run", str(tmp_path / "fixed.onnx"), "--input", str(tmp_path / "x.npy"), "--batch", "8",
                 "--devices", devices[0].id]) == 2  # ran batch 4 silently before
    assert "--batch 8" in capsys.readouterr().err


def test_bench_trace_without_a_plan_traces_a_device(tmp_path, capsys, devices):
    assert main(["bench", "lenet5", "--runs", "1", "--warmup", "0", "--trace", str(tmp_path / "t.json"),
                 "--devices", devices[0].id]) == 0
    assert (tmp_path / "t.json").is_file()  # nothing was written before
    assert f"{devices[0].id} alone" in capsys.readouterr().out


def test_bench_zoo_shows_the_small_models_flops(capsys, devices):
    assert main(["bench", "--zoo", "--models", "lenet5,fcnn", "--batches", "1", "--runs", "1", "--warmup", "0",
                 "--devices", devices[0].id]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| lenet5 | 1")
            or line.startswith("| fcnn | 1")]
    assert len(rows) == 2 and all(float(row[2]) > 0 for row in rows)  # was 0.00 for both


def test_debug_lines_print_once(tmp_path, rng, devices):
    """CLNN_DEBUG=1 with -v printed every debug line twice."""
    np.save(tmp_path / "x.npy", rand(rng, (1, 1, 28, 28)))
    done = subprocess.run([sys.executable, "-m", "clnn", "-v", "run", "lenet5", "--input", str(tmp_path / "x.npy"),
                           "--devices", devices[0].id], capture_output=True, text=True,
                          env={**os.environ, "CLNN_DEBUG": "1"})
    lines = [line for line in done.stderr.splitlines() if line.startswith("clnn: session for")]
    assert done.returncode == 0 and len(lines) == 1, done.stderr


@pytest.mark.parametrize("command", ["devices", "run", "bench"])
def test_every_command_has_help(command):
    done = subprocess.run([sys.executable, "-m", "clnn", command, "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: clnn" in done.stdout


def test_microbench_reports_a_bad_selector_in_one_line():
    done = subprocess.run([sys.executable, "-m", "clnn.microbench", "--devices", "no-such-device"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "matches no device" in done.stderr


@pytest.mark.parametrize("tune, message", [("conv.gpu.TM=128", "no tuning parameter 'conv.gpu.TM'"),
                                           ("winograd", "NAME=VALUE pairs")])
def test_microbench_reports_a_bad_tuning_in_one_line(tune, message, devices):
    done = subprocess.run([sys.executable, "-m", "clnn.microbench", "--devices", devices[0].id, "--tune", tune],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr


def test_microbench_runs_with_a_tuning(devices):
    done = subprocess.run([sys.executable, "-m", "clnn.microbench", "--devices", devices[0].id, "--models", "lenet5",
                           "--ops", "Conv", "--runs", "1", "--tune", "winograd=0,max_split=4"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "'max_split': '4'" in done.stdout and "GFLOP/s" in done.stdout
