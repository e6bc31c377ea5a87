"""The edge-balance sweep (issue 10): PoCL's CPU beside CUDA slices of a GPU
(8, 16, 32 and all SMs), a CPU:GPU balance like a Jetson's.

For each model, batch and slice it times, interleaved, the CPU alone, the
slice alone and plan="auto" over both, with T_ideal = 1 / (1/T_cpu + 1/T_gpu),
the speedup over the best single device, the efficiency T_ideal / T_auto and
the seconds that building the auto session took (calibration and planning);
then torch with cuDNN on the same slice, same network and weights
(torch_peer.py, in a worker process), checked against clnn's output.

    source .whl/gpu-env.sh && python3 benchmarks/edge_balance.py --models lenet5,resnet18 --budget 420

writes OUTPUT.json (a list of rows: model, batch, gpu_sms, cpu_ms, gpu_ms,
auto_ms, cudnn_ms, plan_s, ...), OUTPUT.md and OUTPUT.png (speedup and
efficiency against SM count), after every model. --append keeps the rows of
an earlier OUTPUT.json and skips what they hold, so the same command run
again goes on where a --budget stopped it. --standin SELECTOR times a device
as it is in place of the GPU's slices (no GPU needed: the second PoCL device
on a development machine).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import clnn  # noqa: E402
from clnn.timing import interleaved_medians, random_feeds  # noqa: E402

ZOO = ["lenet5", "fcnn", "alexnet", "vgg16", "squeezenet", "resnet18", "resnet50", "mobilenet_v2"]
# torchvision-NAME: torchvision's NAME with its own random weights, exported to ONNX by the torch worker
TORCHVISION = "torchvision-"
CHECK_TOLERANCE = 1e-3
COLUMNS = ["model", "batch", "gpu_sms", "cpu_ms", "gpu_ms", "auto_ms", "ideal_ms", "speedup", "efficiency",
           "cudnn_ms", "plan_s", "calibration_s", "placement"]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(ZOO),
                   help=f"comma-separated: zoo names ({', '.join(clnn.models.ZOO)}) or {TORCHVISION}NAME")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--sms", default="8,16,32,all", help="SM counts of the GPU slices; all = the whole GPU")
    p.add_argument("--runs", type=int, default=10, help="timed runs of each candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--budget", type=float, default=None, help="seconds: start no row after this")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "edge-balance"),
                   help="path without suffix for .json, .md and .png")
    p.add_argument("--append", action="store_true", help="keep and skip the rows already in OUTPUT.json")
    p.add_argument("--cpu", default="portable", help="selector of the CPU (its first device is used)")
    p.add_argument("--gpu", default="cuda", help="selector of the whole GPU, sliced with :sms=N")
    p.add_argument("--standin", help="a selector timed as the GPU as it is, without slices (testing)")
    p.add_argument("--no-torch", action="store_true", help="leave out torch with cuDNN")
    p.add_argument("--torch-device", default="cuda", help="torch's device (cpu where there is no GPU)")
    p.add_argument("--cache-dir", help="calibration cache to use (default: a new one for this run)")
    p.add_argument("--cold", action="store_true", help="a new calibration cache for every row")
    return p.parse_args(argv)


def rel_err(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


class TorchWorker:
    """torch_peer.py in a process of its own, asked one request at a time."""

    def __init__(self, device):
        self.device = device
        self._process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("torch_peer.py"))],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **request):
        self._process.stdin.write(json.dumps(dict(request, device=self.device)) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            return {"error": f"the torch worker exited (status {self._process.wait()})"}
        return json.loads(line)

    def close(self):
        self._process.stdin.close()
        self._process.wait(30)


def load_model(spec, batch, worker, folder):
    """A zoo model, or torchvision's exported to ONNX by the worker; its spec
    for the worker (a zoo name or the ONNX path)."""
    if spec in clnn.models.ZOO:
        return clnn.models.get(spec, batch=batch), spec
    if not spec.startswith(TORCHVISION):
        raise clnn.ModelError(f"unknown model {spec!r}: the zoo has {', '.join(clnn.models.ZOO)}; "
                              f"{TORCHVISION}NAME exports torchvision's NAME")
    if worker is None:
        raise clnn.ModelError(f"{spec} is exported by torchvision: it needs the torch worker (no --no-torch)")
    path = str(Path(folder) / f"{spec}-b{batch}.onnx")
    reply = worker.ask(export=spec[len(TORCHVISION):], batch=batch, path=path)
    if "error" in reply:
        raise clnn.ModelError(f"exporting {spec}: {reply['error']}")
    return clnn.load(path, batch=batch), path


def placement(plan, cpu, gpu):
    """How many layers run whole on each device, and split."""
    counts = {}
    for p in plan.placements.values():
        key = f"split {p.dim}" if p.dim is not None else (
            "cpu" if p.devices[p.shares.index(max(p.shares))] == cpu.id else "gpu")
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda x: -x[1]))


def measure(model, spec, batch, cpu, gpu, cpu_session, feeds, args):
    """One row: the CPU, the GPU slice and plan="auto" over both, interleaved."""
    if args.cold:
        os.environ["CLNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="clnn-cold-")
    gpu_session = clnn.InferenceSession(model, devices=[gpu], plan=[1.0])
    started = time.perf_counter()
    auto = clnn.InferenceSession(model, devices=[cpu, gpu], plan="auto")
    plan_s = time.perf_counter() - started
    sessions = [cpu_session, gpu_session, auto]
    outputs = [s.run(None, feeds)[0] for s in sessions]
    medians, _ = interleaved_medians([lambda s=s: s.run(None, feeds) for s in sessions], args.runs, args.warmup)
    cpu_ms, gpu_ms, auto_ms = (m * 1e3 for m in medians)
    ideal_ms = 1.0 / (1.0 / cpu_ms + 1.0 / gpu_ms)
    report = auto.partition_report
    return {
        "model": spec if spec in clnn.models.ZOO else Path(spec).stem.rsplit("-b", 1)[0], "batch": batch,
        "gpu_sms": gpu.compute_units, "gpu_device": gpu.id, "cpu_device": cpu.id,
        "cpu_ms": cpu_ms, "gpu_ms": gpu_ms, "auto_ms": auto_ms, "ideal_ms": ideal_ms,
        "speedup": min(cpu_ms, gpu_ms) / auto_ms, "efficiency": ideal_ms / auto_ms,
        "slower_over_faster": max(cpu_ms, gpu_ms) / min(cpu_ms, gpu_ms),
        "plan_s": plan_s, "calibration_s": report.calibration_seconds if report else 0.0,
        "placement": placement(auto.plan, cpu, gpu), "fallback": report.fallback if report else "",
        "rel_err": max(rel_err(outputs[0], outputs[1]), rel_err(outputs[2], outputs[1])),
        "cudnn_ms": None, "runs": args.runs,
    }, outputs[1]


def gpu_for(sms, args):
    if args.standin:
        return clnn.select(args.standin)[0]
    return clnn.select(args.gpu if sms == "all" else f"{args.gpu}:sms={sms}")[0]


def sweep(args, rows, save, log=print):
    """Measure the rows that ``rows`` lacks, calling ``save(rows)`` after each
    model and batch; False where the budget stopped it."""
    if "cuda" not in clnn.runtime.backends() and not getattr(args, "standin", None):
        raise SystemExit("the cuda backend is not registered (an uninstalled checkout has no entry points): run "
                         "python3 -c 'import setuptools; setuptools.setup()' -q egg_info here first")
    started = time.perf_counter()
    done = {(r["model"], r["batch"], r["gpu_sms"]) for r in rows}
    cpu = clnn.select(args.cpu)[0]
    sms_list = [s.strip() for s in args.sms.split(",")] if not args.standin else ["standin"]
    worker = None if args.no_torch else TorchWorker(args.torch_device)
    folder = tempfile.mkdtemp(prefix="edge-balance-")
    if not args.cache_dir and not args.cold:
        os.environ["CLNN_CACHE_DIR"] = str(Path(folder) / "cache")
    elif args.cache_dir:
        os.environ["CLNN_CACHE_DIR"] = args.cache_dir
    try:
        for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
            for batch in [int(b) for b in args.batches.split(",")]:
                gpus = [gpu_for(s, args) for s in sms_list]
                wanted = [g for g in gpus if (spec, batch, g.compute_units) not in done]
                if not wanted:
                    continue
                if args.budget is not None and time.perf_counter() - started > args.budget:
                    log(f"budget of {args.budget:.0f} s spent; run the same command with --append to go on")
                    return False
                try:
                    model, model_spec = load_model(spec, batch, worker, folder)
                except clnn.ClnnError as exc:
                    log(f"{spec} b{batch}: skipped: {exc}")
                    continue
                feeds = random_feeds(model)
                cpu_session = clnn.InferenceSession(model, devices=[cpu], plan=[1.0])
                measured, expected = [], None
                for gpu in wanted:
                    if args.budget is not None and time.perf_counter() - started > args.budget:
                        break
                    row, gpu_output = measure(model, model_spec, batch, cpu, gpu, cpu_session, feeds, args)
                    if expected is None:
                        expected = str(Path(folder) / "expected.npy")
                        np.save(expected, gpu_output)
                    measured.append((row, gpu))
                    log(_progress(row, time.perf_counter() - started))
                if worker is not None and measured:
                    _torch(worker, model_spec, batch, measured, expected, args, log)
                rows.extend(r for r, _ in measured)
                done |= {(r["model"], r["batch"], r["gpu_sms"]) for r, _ in measured}
                save(rows)
                if len(measured) < len(wanted):
                    log(f"budget of {args.budget:.0f} s spent; run the same command with --append to go on")
                    return False
    finally:
        if worker is not None:
            worker.close()
    return True


def _torch(worker, model_spec, batch, measured, expected, args, log):
    """cudnn_ms of each row, from one request for all its slices."""
    whole = None if args.standin else clnn.select(args.gpu)[0].compute_units
    sms = [None if args.standin or row["gpu_sms"] == whole else row["gpu_sms"] for row, _ in measured]
    reply = worker.ask(model=model_spec, batch=batch, sms=sms, runs=args.runs, warmup=args.warmup, expected=expected)
    for (row, _), count in zip(measured, sms):
        if "error" in reply:
            row["cudnn_error"] = reply["error"]
        elif reply.get("rel_err", 0.0) > CHECK_TOLERANCE:
            row["cudnn_error"] = f"torch's output differs from clnn's by {reply['rel_err']:.2e}"
        else:
            row["cudnn_ms"] = reply["ms"][str(count)]
            row["cudnn_rel_err"] = reply.get("rel_err")
    log(f"  torch/cuDNN {model_spec} b{batch}: "
        + (reply.get("error") or ", ".join(f"{k} SMs {v:.3f} ms" for k, v in reply["ms"].items())))


def _progress(row, elapsed):
    text = (f"{row['model']:>12} b{row['batch']:<3} {row['gpu_sms']:>4} SMs: cpu {row['cpu_ms']:9.3f}  "
            f"gpu {row['gpu_ms']:9.3f}  auto {row['auto_ms']:9.3f}  ideal {row['ideal_ms']:9.3f} ms  "
            f"speedup {row['speedup']:.2f}  eff {row['efficiency']:.2f}  plan {row['plan_s']:.1f} s  "
            f"[{elapsed:.0f} s]")
    if row["rel_err"] > CHECK_TOLERANCE:
        text += f"  OUTPUTS DIFFER: {row['rel_err']:.1e}"
    return text


def markdown(rows):
    head = ["model", "batch", "GPU SMs", "CPU ms", "GPU ms", "auto ms", "ideal ms", "speedup", "efficiency",
            "cuDNN ms", "plan s", "auto placement"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(rows, key=lambda r: (r["model"], r["batch"], r["gpu_sms"])):
        cudnn = f"{r['cudnn_ms']:.3f}" if r.get("cudnn_ms") is not None else "-"
        cells = [r["model"], str(r["batch"]), str(r["gpu_sms"]), f"{r['cpu_ms']:.3f}", f"{r['gpu_ms']:.3f}",
                 f"{r['auto_ms']:.3f}", f"{r['ideal_ms']:.3f}", f"{r['speedup']:.2f}", f"{r['efficiency']:.2f}",
                 cudnn, f"{r['plan_s']:.1f}", r["placement"] + (" (fallback)" if r.get("fallback") else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    """Speedup and efficiency against SM count, a line per model and batch;
    False where matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from matplotlib.ticker import ScalarFormatter
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in sorted({(r["model"], r["batch"]) for r in rows}):
        line = sorted((r for r in rows if (r["model"], r["batch"]) == key), key=lambda r: r["gpu_sms"])
        sms = [r["gpu_sms"] for r in line]
        left.plot(sms, [r["speedup"] for r in line], marker="o", label=f"{key[0]} b{key[1]}")
        right.plot(sms, [r["efficiency"] for r in line], marker="o", label=f"{key[0]} b{key[1]}")
    for axes, title, target in ((left, "speedup over the best single device", 1.0),
                                (right, "efficiency T_ideal / T_auto", 0.85)):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted({r["gpu_sms"] for r in rows}))
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.axhline(target, color="grey", linewidth=0.8, linestyle="--")
        axes.set_xlabel("GPU SMs (slice)")
        axes.set_title(title)
    right.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def main(argv=None):
    args = parse(argv)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    json_path = output.with_suffix(".json")
    rows = json.loads(json_path.read_text()) if args.append and json_path.is_file() else []

    def save(found):
        json_path.write_text(json.dumps(found, indent=1))
        output.with_suffix(".md").write_text(markdown(found))
        plot(found, output.with_suffix(".png"))

    finished = sweep(args, rows, save)
    if rows:
        save(rows)
        print(markdown(rows))
    print(f"{len(rows)} rows in {json_path}" + ("" if finished else " (stopped by --budget)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
