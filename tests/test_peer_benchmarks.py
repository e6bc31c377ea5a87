"""The peer benchmarks (benchmarks/cpu_peers.py, gpu_peers.py) run end to
end on a small model and write the rows that the issues' targets are checked
from."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import clnn

ROOT = Path(__file__).resolve().parents[1]
# the benchmarks time clnn on a CPU beside onnxruntime (gpu_peers --quick
# too, where torch's GPU is not asked for)
CPUS = [d.id for d in clnn.select(None) if d.kind == "cpu"]
DEVICE = CPUS[0] if CPUS else None
pytestmark = pytest.mark.skipif(DEVICE is None, reason="this environment has no CPU device")


def run(script, *args):
    path = [str(Path(clnn.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


FEW_RUNS = ("--warmup", 1, "--runs", 5, "--min-runs", 3, "--budget-s", 0)  # three timed runs


def test_cpu_peers_rows_checked_and_merged(tmp_path):
    out = tmp_path / "cpu-peers"
    common = ("--models", "lenet5", "--systems", "clnn-pocl,onnxruntime", "--devices", DEVICE, *FEW_RUNS,
              "--output", out)
    run("cpu_peers.py", *common, "--batches", "1,2", "--machine", "one")
    run("cpu_peers.py", *common, "--batches", "2", "--machine", "two")
    rows = json.loads(out.with_suffix(".json").read_text())
    assert sorted((r["machine"], r["batch"], r["system"]) for r in rows) == [
        (m, b, s) for m, b in (("one", 1), ("one", 2), ("two", 2)) for s in ("clnn-pocl", "onnxruntime")]
    for r in rows:
        assert r["model"] == "lenet5" and r["ms"] > 0 and r["runs"] == 3
        assert r["relerr"] < 1e-4, r   # each system against the other
    table = out.with_suffix(".md").read_text()
    assert "clnn / best peer" in table and table.count("| lenet5 | 2 |") == 2


def test_cpu_peers_runs_an_onnx_file_with_a_symbolic_batch_at_each_batch(tmp_path):
    import onnx
    proto = clnn.models.get("fcnn").to_onnx()
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(proto, str(tmp_path / "fcnn-any.onnx"))
    out = tmp_path / "peers"
    run("cpu_peers.py", "--models", "", "--onnx", f"mine={tmp_path / 'fcnn-any.onnx'}", "--batches", "1,3",
        "--systems", "clnn-pocl,onnxruntime", "--devices", DEVICE, *FEW_RUNS, "--output", out)
    rows = json.loads(out.with_suffix(".json").read_text())
    assert sorted((r["model"], r["batch"]) for r in rows) == [("mine", 1), ("mine", 1), ("mine", 3), ("mine", 3)]
    assert all(r["ms"] > 0 and r["relerr"] < 1e-4 for r in rows)


def test_memory_rows_are_fresh_process_peaks_less_a_baseline(tmp_path):
    out = tmp_path / "memory"
    run("cpu_peers.py", "--memory", "--models", "fcnn", "--batches", "1", "--systems", "clnn-pocl,onnxruntime",
        "--devices", DEVICE, "--memory-output", out)
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [r["system"] for r in rows] == ["clnn-pocl", "onnxruntime"]
    for r in rows:
        # fcnn's weights alone are 2.6 MB; a peak this small cannot have been inherited from the parent
        assert 0 < r["baseline_mb"] < r["peak_rss_mb"] < 1000
        assert abs(r["delta_mb"] - (r["peak_rss_mb"] - r["baseline_mb"])) < 0.2
        assert r["rss_built_mb"] <= r["peak_rss_mb"]
    assert "clnn / ort peak" in out.with_suffix(".md").read_text()


def test_gpu_peers_quick_records_a_missing_system_as_an_error_row(tmp_path):
    out = tmp_path / "gpu-peers"
    run("gpu_peers.py", "--quick", "--systems", "clnn-opencl,clnn-cuda", "--opencl-devices", DEVICE,
        "--cuda-devices", "no-such-platform", "--output", out)
    rows = json.loads(out.with_suffix(".json").read_text())
    assert sorted((r["model"], r["system"]) for r in rows) == [
        (m, s) for m in ("fcnn", "lenet5") for s in ("clnn-cuda", "clnn-opencl")]
    for r in rows:
        if r["system"] == "clnn-opencl":
            assert r["ms"] > 0 and r["relerr"] == 0.0 and "error" not in r
        else:
            assert r["ms"] is None and "no-such-platform" in r["error"]
    assert "clnn-opencl / cudnn" in out.with_suffix(".md").read_text()
