"""clnn on one OpenCL CPU device (PoCL) beside onnxruntime and OpenVINO on the
same ONNX files: median latency (issue 12) and, with --memory, the peak
memory of each (issue 15).

Every system runs the same ONNX file: the zoo models as clnn exports them
(plus any --onnx NAME=FILE, e.g. torchvision exports), with the same input.
Speed: one process; each system is warmed up, then the systems take turns run
after run (clnn, onnxruntime, openvino, clnn, ...) and the medians are kept;
each system's output is checked against the others'. Memory: one fresh child
process per (model, batch, system) builds the session and runs it a few
times; its peak RSS (VmHWM) is reported as is and less the peak of a
child that only loads the same library and lists its devices.

Results: OUTPUT.json (a list of rows: machine, model, batch, system, ms, ...)
and OUTPUT.md; with --memory, MEMORY.json (rows: machine, model, batch,
system, peak_rss_mb, delta_mb, ...) and MEMORY.md. Rows of other machines
already in those files are kept; rows of the same machine, model, batch and
system are replaced.

  python benchmarks/cpu_peers.py [--models lenet5,vgg16] [--batches 1,16]
      [--onnx resnet50=resnet50.onnx] [--machine dev] [--memory]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers_common as pc  # noqa: E402

SYSTEMS = ("clnn-pocl", "onnxruntime", "openvino")
LIBRARY = {"clnn-pocl": "clnn", "onnxruntime": "onnxruntime", "openvino": "openvino"}
RESULTS = Path(__file__).resolve().parent / "results"
# issue 15: where clnn's peak memory exceeds onnxruntime's by more than this, find out why
OVER = 1.5


def threads():
    return len(os.sched_getaffinity(0))


def open_library(system, devices):
    """Import a system's library and list its devices: what any session of it
    needs before a model is read (the memory baseline)."""
    if system == "clnn-pocl":
        import clnn
        clnn.devices(devices)
    elif system == "onnxruntime":
        import onnxruntime
        onnxruntime.get_available_providers()
    else:
        import openvino
        openvino.Core().available_devices


def runner(system, path, batch, devices):
    """A call x -> the model's first output (a fresh array) for ``system``."""
    if system == "clnn-pocl":
        return pc.clnn_runner(path, batch, devices)
    if system == "onnxruntime":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    import openvino as ov
    compiled = ov.Core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    output = compiled.output(0)
    # infer() returns views of the request's own output tensor: copy, as the others return new arrays
    return lambda x: np.array(request.infer({0: x})[output])


def available(systems):
    missing = [s for s in systems if importlib.util.find_spec(LIBRARY[s]) is None]
    for s in missing:
        print(f"{s}: {LIBRARY[s]} is not installed; left out", file=sys.stderr)
    return [s for s in systems if s not in missing]


# speed ---------------------------------------------------------------------------------
def speed_rows(cases, systems, args, host):
    rows = []
    for name, batch, path in cases:
        x = pc.input_for(pc.input_shape(path))
        runs, outputs, errors = {}, {}, {}
        for system in systems:
            try:
                runs[system] = runner(system, path, batch, args.devices)
                outputs[system] = runs[system](x)
            except Exception as exc:  # a system that refuses the model gets a row with its error
                errors[system] = pc.error_text(exc)
                runs.pop(system, None)
        budget = args.budget_s * len(runs)
        samples = pc.interleaved({s: (lambda r=r: r(x)) for s, r in runs.items()}, args.warmup,
                                 args.min_runs, args.runs, budget)
        for system in systems:
            row = {"machine": args.machine, "model": name, "batch": batch, "system": system,
                   "ms": pc.median_ms(samples[system]) if system in samples else None,
                   "runs": len(samples.get(system, [])), "threads": threads()}
            if system in outputs:
                against = {o: pc.relerr(outputs[system], outputs[o]) for o in outputs if o != system}
                row["relerr"] = max(against.values(), default=None)
                row["relerr_vs"] = against
            if system in errors:
                row["error"] = errors[system]
            row["host"] = host
            pc.record(args.output + ".json", row, rows)
    return rows


def speed_markdown(rows):
    def line(cell):
        ms = {s: r.get("ms") for s, r in cell.items()}
        peers = [(ms[s], s) for s in SYSTEMS[1:] if ms[s] is not None]
        best = min(peers) if peers else (None, "-")
        return [pc.fmt(ms[s]) for s in SYSTEMS] + [best[1], pc.fmt(pc.ratio(ms["clnn-pocl"], best[0])),
                                                   pc.max_relerr(cell)]

    head = [f"{s} ms" for s in SYSTEMS] + ["best peer", "clnn / best peer", "max relerr"]
    return ("# clnn on PoCL beside CPU peers (median ms per run)\n\n" + pc.sections(rows, SYSTEMS, head, line) + "\n"
            + pc.error_notes(rows))


# memory --------------------------------------------------------------------------------
def child_main(system, path, batch, runs, shape, devices):
    """In a fresh process: load the library, build a session for ``path``
    (or nothing where path is '-') and run it on an input of ``shape`` (given,
    so that reading it from the file costs no memory here); print the memory
    on the last line.
    The peak is the kernel's VmHWM of this process image: ru_maxrss would
    carry the parent's peak over fork and exec."""
    def status_mb(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024

    found = {}
    open_library(system, devices)
    found["rss_library_mb"] = status_mb("VmRSS")
    if path != "-":
        x = pc.input_for(shape)
        run = runner(system, path, int(batch), devices)
        found["rss_built_mb"] = status_mb("VmRSS")
        for _ in range(runs):
            run(x)
        found["rss_end_mb"] = status_mb("VmRSS")
    found["peak_rss_mb"] = status_mb("VmHWM")
    print(json.dumps({k: round(v, 1) for k, v in found.items()}))


def child(system, path, batch, args):
    shape = "x".join(map(str, pc.input_shape(path))) if path != "-" else "0"
    command = [sys.executable, __file__, "--child", system, str(path), str(batch), str(args.memory_runs), shape,
               "--devices", args.devices]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{system} child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_rows(cases, systems, args, host):
    baseline = {s: child(s, "-", 0, args)["peak_rss_mb"] for s in systems}
    rows = []
    for name, batch, path in cases:
        for system in systems:
            row = {"machine": args.machine, "model": name, "batch": batch, "system": system}
            try:
                found = child(system, path, batch, args)
                row.update(peak_rss_mb=found["peak_rss_mb"], delta_mb=round(found["peak_rss_mb"] - baseline[system], 1),
                           baseline_mb=baseline[system], **{k: v for k, v in found.items() if k != "peak_rss_mb"})
            except Exception as exc:
                row.update(peak_rss_mb=None, delta_mb=None, error=pc.error_text(exc))
            row["host"] = host
            pc.record(args.memory_output + ".json", row, rows)
    return rows


def memory_markdown(rows):
    def line(cell):
        clnn, ort = cell["clnn-pocl"], cell["onnxruntime"]
        peak_ratio = pc.ratio(clnn.get("peak_rss_mb"), ort.get("peak_rss_mb"))
        delta_ratio = pc.ratio(clnn.get("delta_mb"), ort.get("delta_mb"))
        over = [k for k, r in (("peak", peak_ratio), ("delta", delta_ratio)) if r is not None and r > OVER]
        return [f"{pc.fmt(cell[s].get('peak_rss_mb'))} / {pc.fmt(cell[s].get('delta_mb'))}" for s in SYSTEMS] + [
            pc.fmt(peak_ratio), pc.fmt(delta_ratio), ", ".join(over)]

    head = [f"{s} peak / delta MB" for s in SYSTEMS] + ["clnn / ort peak", "clnn / ort delta", f"over {OVER}x"]
    return ("# Peak RSS of a session (MB), each in a fresh process\n\n"
            "peak: the peak RSS (VmHWM) of a child that built the session from the ONNX file and ran it "
            "a few times; delta: the same less the peak of a child that only loaded the library and listed "
            "its devices (the baseline).\n\n" + pc.sections(rows, SYSTEMS, head, line) + "\n")


# command line --------------------------------------------------------------------------
def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(pc.ZOO), help="zoo models, comma-separated ('' for none)")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--onnx", action="append", default=[], metavar="NAME=FILE",
                   help="an extra ONNX file (a symbolic batch runs at every batch); repeatable")
    p.add_argument("--torchvision", default="", metavar="NAMES",
                   help="torchvision models to export and add, e.g. resnet50,mobilenet_v2 (needs torch)")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--devices", default="portable", help="clnn selector; its first device runs the model")
    pc.timing_arguments(p, warmup=2, runs=30, budget_s=4.0)
    p.add_argument("--machine", default="dev", help="recorded in every row, e.g. dev or gpu")
    p.add_argument("--output", default=str(RESULTS / "cpu-peers"), help="speed results: OUTPUT.json, OUTPUT.md")
    p.add_argument("--memory", action="store_true", help="measure peak RSS instead of speed")
    p.add_argument("--memory-output", default=str(RESULTS / "memory"))
    p.add_argument("--memory-runs", type=int, default=3)
    p.add_argument("--workdir", help="where the ONNX files go (default: a temporary folder)")
    p.add_argument("--child", nargs=5, metavar=("SYSTEM", "PATH", "BATCH", "RUNS", "SHAPE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.child:
        system, path, batch, runs, shape = args.child
        return child_main(system, path, batch, int(runs), tuple(map(int, shape.split("x"))), args.devices)
    systems = available([s for s in args.systems.split(",") if s])
    batches = [int(b) for b in args.batches.split(",")]
    host = pc.machine_info()
    with tempfile.TemporaryDirectory(prefix="clnn-peers-") as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        cases = [(m, b, pc.export_zoo(m, b, workdir)) for m in args.models.split(",") if m for b in batches]
        exported = [f"{n}={pc.export_torchvision(n, workdir)}" for n in args.torchvision.split(",") if n]
        cases += pc.onnx_cases(args.onnx + exported, batches, workdir)
        if args.memory:
            memory_rows(cases, systems, args, host)
            rows = pc.read_rows(args.memory_output + ".json")
            Path(args.memory_output + ".md").write_text(memory_markdown(rows))
            print(memory_markdown(rows))
            return 0
        new = speed_rows(cases, systems, args, host)
    rows = pc.read_rows(args.output + ".json")
    Path(args.output + ".md").write_text(speed_markdown(rows))
    print(speed_markdown(rows))
    disagree = [r for r in new if r.get("relerr") is not None and r["relerr"] > pc.AGREEMENT]
    for r in disagree:
        print(f"OUTPUTS DISAGREE: {r['model']} b{r['batch']} {r['system']}: {r['relerr_vs']}", file=sys.stderr)
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
