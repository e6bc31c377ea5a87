"""benchmarks/edge_balance.py and torch_peer.py without a GPU: the sweep with
the second PoCL device standing in for the GPU's slices (its rows, table,
--append and --budget), and torch's copy of a clnn network."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import clnn
from clnn.timing import random_feeds

from helpers import rel_err

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
edge_balance = importlib.import_module("edge_balance")


@pytest.fixture
def standin(devices, monkeypatch, tmp_path):
    if len(devices) < 2 or devices[0].kind != "cpu":
        pytest.skip("needs two CPU devices (POCL_DEVICES='pthread pthread'), one standing in for the GPU")
    monkeypatch.setenv("CLNN_CACHE_DIR", str(tmp_path / "cache"))  # the sweep sets its own; restored after
    return ["--cpu", devices[0].id, "--standin", devices[1].id, "--no-torch", "--runs", "2", "--warmup", "1"]


def test_the_sweep_writes_its_rows_and_goes_on_with_append(standin, tmp_path, capsys):
    output = tmp_path / "edge"
    assert edge_balance.main(["--models", "fcnn", "--batches", "1", "--output", str(output), *standin]) == 0
    (row,) = json.loads(output.with_suffix(".json").read_text())
    for key in ("model", "batch", "gpu_sms", "cpu_ms", "gpu_ms", "auto_ms", "cudnn_ms", "plan_s"):
        assert key in row
    assert (row["model"], row["batch"], row["cudnn_ms"]) == ("fcnn", 1, None)
    assert row["ideal_ms"] == pytest.approx(1 / (1 / row["cpu_ms"] + 1 / row["gpu_ms"]))
    assert row["efficiency"] == pytest.approx(row["ideal_ms"] / row["auto_ms"])
    assert row["speedup"] == pytest.approx(min(row["cpu_ms"], row["gpu_ms"]) / row["auto_ms"])
    assert row["plan_s"] > 0 and row["rel_err"] < 1e-4
    assert "| fcnn | 1 |" in output.with_suffix(".md").read_text()
    # the same command with --append and one more batch measures only that batch
    assert edge_balance.main(["--models", "fcnn", "--batches", "1,2", "--output", str(output), "--append",
                              *standin]) == 0
    rows = json.loads(output.with_suffix(".json").read_text())
    assert [(r["model"], r["batch"]) for r in rows] == [("fcnn", 1), ("fcnn", 2)]
    assert rows[0] == row
    assert "fcnn b2" in capsys.readouterr().out


def test_a_spent_budget_starts_no_row(standin, tmp_path, capsys):
    output = tmp_path / "edge"
    assert edge_balance.main(["--models", "fcnn", "--output", str(output), "--budget", "0", *standin]) == 0
    assert "budget of 0 s spent; run the same command with --append" in capsys.readouterr().out
    assert not output.with_suffix(".json").exists()


def test_a_model_it_cannot_load_is_skipped(standin, tmp_path, capsys):
    assert edge_balance.main(["--models", "no-such-net,torchvision-resnet50", "--batches", "1",
                              "--output", str(tmp_path / "edge"), *standin]) == 0
    out = capsys.readouterr().out
    assert "no-such-net b1: skipped: unknown model" in out
    assert ("torchvision-resnet50 b1: skipped: torchvision-resnet50 is exported by torchvision: it needs the torch "
            "worker") in out


@pytest.mark.parametrize("name", ["lenet5", "squeezenet", "resnet18"])
def test_torch_runs_the_same_network(name):
    pytest.importorskip("torch")
    torch_peer = importlib.import_module("torch_peer")
    model = clnn.models.get(name)
    feeds = random_feeds(model)
    import torch
    with torch.inference_mode():
        (actual,) = torch_peer.Network(model).eval()(*[torch.from_numpy(a) for a in feeds.values()])
    assert rel_err(actual.numpy(), model.reference(feeds)[0]) < 1e-4


def test_the_torch_worker_times_and_checks(tmp_path):
    pytest.importorskip("torch")
    torch_peer = importlib.import_module("torch_peer")
    model = clnn.models.get("lenet5")
    expected = tmp_path / "expected.npy"
    np.save(expected, model.reference(random_feeds(model))[0])
    reply = torch_peer.measure({"model": "lenet5", "batch": 1, "sms": [None], "runs": 2, "warmup": 1,
                                "device": "cpu", "expected": str(expected)})
    assert reply["rel_err"] < 1e-4 and reply["ms"]["None"] > 0
