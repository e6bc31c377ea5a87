"""What the peer benchmarks (cpu_peers.py, gpu_peers.py) share: the models as
ONNX files, inputs and output checks, clnn's session, interleaved timing, and
the results files (JSON rows and markdown tables).

Only clnn's public API is used (clnn.load, clnn.models.get, Model.save,
clnn.devices, clnn.InferenceSession, session.run), so that the benchmarks
outlive changes inside the package.
"""

import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ZOO = ("lenet5", "fcnn", "alexnet", "vgg16", "squeezenet", "resnet18", "resnet50", "mobilenet_v2", "yolov2",
       "posenet", "fst", "retinaface")
# outputs of two systems agree when their largest difference, relative to the
# largest output, stays under this (float32 with different summation orders)
AGREEMENT = 1e-3


# models and data -------------------------------------------------------------------
def export_zoo(name, batch, directory):
    """The zoo model at ``batch`` written as ONNX into ``directory``; its path."""
    import clnn
    path = Path(directory) / f"{name}-b{batch}.onnx"
    if not path.exists():
        clnn.models.get(name, batch=batch).save(path)
    return path


def batch_of(path):
    """The batch size fixed in an ONNX file's first input, or None where it is symbolic."""
    import onnx
    dim = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else None


def at_batch(path, batch, directory):
    """An ONNX file with a symbolic batch copied with ``batch`` fixed in its
    inputs and outputs, so that every system runs the same static graph."""
    import onnx
    target = Path(directory) / f"{Path(path).stem}-b{batch}.onnx"
    if not target.exists():
        proto = onnx.load(str(path))
        for value in list(proto.graph.input) + list(proto.graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = batch
        del proto.graph.value_info[:]   # intermediate shapes, inferred again by each system
        onnx.save(proto, str(target))
    return target


def onnx_cases(specs, batches, directory):
    """[(name, batch, path)] for ``--onnx name=path`` arguments: a file with a
    symbolic batch runs at every batch, one with a fixed batch at its own."""
    cases = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"--onnx wants NAME=FILE.onnx with an existing file, got {spec!r}")
        fixed = batch_of(path)
        if fixed is None:
            cases += [(name, b, at_batch(path, b, directory)) for b in batches]
        else:
            cases.append((name, fixed, Path(path)))
    return cases


def torchvision_module(name, seed=0):
    """torchvision's ``name`` (e.g. resnet50, mobilenet_v2) with its own
    random initialisation under a fixed seed, in eval mode (needs torch)."""
    import torch
    import torchvision
    torch.manual_seed(seed)
    return getattr(torchvision.models, name)(weights=None).eval()


def export_torchvision(name, directory, seed=0):
    """torchvision's ``name`` written as ONNX (opset 17, TorchScript exporter,
    symbolic batch) into ``directory``; its path."""
    import torch
    path = Path(directory) / f"{name}.onnx"
    if not path.exists():
        torch.onnx.export(torchvision_module(name, seed), (torch.zeros(1, 3, 224, 224),), str(path),
                          input_names=["x"], output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


def input_shape(path):
    """The shape of an ONNX file's first input (reads the whole file: call it
    where the file's weights in memory do not matter)."""
    import onnx
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims)


def input_for(shape, seed=0):
    """A seeded standard-normal float32 input (the same for every system)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def relerr(y, ref):
    """Largest absolute difference relative to the largest magnitude of ``ref``."""
    y, ref = np.asarray(y, np.float64), np.asarray(ref, np.float64)
    if y.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), 1e-30))


def clnn_runner(path, batch, devices):
    """A call x -> first output running the ONNX file with clnn on the first
    device ``devices`` selects, the whole model on it (plan [1.0])."""
    import clnn
    device = clnn.devices(devices)[:1]
    session = clnn.InferenceSession(clnn.load(str(path), batch=batch), devices=device, plan=[1.0])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def error_text(exc):
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]


# timing ------------------------------------------------------------------------------
def settle(window_s=0.01, busy=0.1, limit_s=0.2):
    """Wait until this process's threads are idle: after a run, onnxruntime's
    pool spins for tens of milliseconds on every core, which would slow
    whichever system runs next. Returns once a window of ``window_s`` used
    less than ``busy`` of one core, or after ``limit_s``."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(window_s)
        if time.process_time() - cpu < busy * (time.perf_counter() - wall):
            return


def interleaved(calls, warmup=2, min_runs=5, max_runs=50, budget_s=10.0):
    """{name: [seconds of each run]} for {name: call}. After ``warmup`` calls
    each, the calls take turns (A, B, C, A, B, C, ...) so that a drift of the
    machine biases none of them, each starting once the one before has
    settled; rounds stop after ``max_runs``, or once ``budget_s`` seconds
    have passed since the warm-up and ``min_runs`` rounds are done."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples = {name: [] for name in calls}
    deadline = time.perf_counter() + budget_s
    for round_ in range(max_runs):
        if round_ >= min_runs and time.perf_counter() > deadline:
            break
        for name, call in calls.items():
            settle()
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return samples


def timing_arguments(parser, warmup, runs, budget_s):
    """The command-line options of ``interleaved``, with these defaults."""
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--runs", type=int, default=runs, help="at most this many timed runs per system")
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=budget_s,
                        help="seconds per system and case (wall time) after which, once --min-runs are done, "
                             "no new round starts")


def median_ms(seconds):
    return round(float(np.median(seconds)) * 1e3, 4)


# results -----------------------------------------------------------------------------
def machine_info():
    """What the rows were measured on, for the tables' headers."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)),
            "date": datetime.date.today().isoformat(), "python": platform.python_version()}


ROW_KEY = ("machine", "model", "batch", "system")


def read_rows(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else []


def merge_rows(path, rows):
    """Write ``rows`` to the JSON list at ``path``: rows already there with the
    same machine, model, batch and system are replaced, all others kept (so
    the development machine's rows and the GPU machine's share one file, and
    a rerun of some models leaves the others). Returns all rows."""
    new = {tuple(r[k] for k in ROW_KEY) for r in rows}
    merged = [r for r in read_rows(path) if tuple(r.get(k) for k in ROW_KEY) not in new] + list(rows)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def record(path, row, rows):
    """Add ``row`` to ``rows``, print it and merge it into the JSON file at
    ``path`` at once, so that a run cut short keeps what it measured."""
    rows.append(row)
    print(json.dumps({k: v for k, v in row.items() if k != "host"}), flush=True)
    merge_rows(path, [row])


def pick(rows, **match):
    """The first row whose keys have the given values, or None."""
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def cases_of(rows):
    """(machine, model, batch) in the order the rows first name them."""
    seen = []
    for r in rows:
        case = (r["machine"], r["model"], r["batch"])
        if case not in seen:
            seen.append(case)
    return seen


def fmt(value, digits=3):
    """A cell: '-' for missing, 3 significant digits otherwise."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def markdown(head, lines):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def machine_headers(rows):
    """{machine: one line describing it}, from the rows' ``host`` fields."""
    found = {}
    for r in rows:
        if r["machine"] not in found and "host" in r:
            h = r["host"]
            found[r["machine"]] = f"{h['cpu']}, {h['cores']} cores, measured {h['date']}"
    return found


def sections(rows, systems, head, line):
    """The tables of ``rows``, one section per machine (headed by its
    machine_headers line) with a line per (model, batch) case: model, batch,
    then ``line(cell)``, where cell is {system: its row, or {}}; ``head``
    names the columns after model and batch."""
    found = []
    for machine, header in machine_headers(rows).items():
        lines = []
        for m, model, batch in cases_of(rows):
            if m == machine:
                cell = {s: pick(rows, machine=m, model=model, batch=batch, system=s) or {} for s in systems}
                lines.append([model, batch] + line(cell))
        found.append(f"## {machine}: {header}\n\n{markdown(['model', 'batch'] + head, lines)}")
    return "\n\n".join(found)


def max_relerr(cell):
    """A cell's largest relerr as a table cell."""
    errs = [r["relerr"] for r in cell.values() if r.get("relerr") is not None]
    return f"{max(errs):.1e}" if errs else "-"


def error_notes(rows):
    """The errors of ``rows`` as a list after a table ('' where there are none)."""
    notes = "".join(f"- {r['machine']} {r['model']} b{r['batch']} {r['system']}: {r['error']}\n"
                    for r in rows if r.get("error"))
    return "\nErrors:\n" + notes if notes else ""
