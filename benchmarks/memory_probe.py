"""Where a clnn session's memory goes (issue 15): resident memory after each
step of loading, building and running one model, in a fresh process, beside
what the model's own numbers say it must hold.

Steps: the library with its devices listed; clnn.load of the ONNX file; the
session built; the first run; more runs; the session and then the model
dropped. For each: resident MB (VmRSS), the process's peak so far (VmHWM) and
the peak of numpy's allocations during the step (tracemalloc). Sizes: the
model's float32 weights, every tensor (clnn gives each its own storage), and
the most that is live at once when tensors are kept only from their producer
to their last reader (what a liveness-based allocator would need).

  python benchmarks/memory_probe.py vgg16 16 [--devices portable] [--onnx FILE]
"""

import argparse
import gc
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers_common as pc  # noqa: E402

MB = 2**20


def status_mb(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024


def storages(model):
    """{tensor: the tensor whose storage it uses}: a view (Flatten) shares its
    input's, a Concat input written in place shares the Concat's. Reads
    two layer attributes of clnn's ops (is_view, in_place_inputs); where they
    are gone, every tensor counts as its own storage."""
    owner = {name: name for name in model.shapes}
    for layer in reversed(model.layers):
        for index, _ in getattr(layer, "in_place_inputs", lambda: [])():
            owner[layer.inputs[index]] = owner[layer.name]
    for layer in model.layers:
        if getattr(layer, "is_view", False) and not getattr(layer, "in_place_inputs", lambda: [])():
            owner[layer.name] = owner[layer.inputs[0]]
    return owner


def tensor_sizes(model):
    """(MB of all tensor storage, MB of it live at most at once) in the
    model's layer order: a storage lives from the first layer writing it (or
    the start, for inputs) to its last reader (or the end, for outputs)."""
    owner = storages(model)
    size = {o: int(np.prod(model.shapes[o])) * 4 / MB for o in set(owner.values())}
    first, last = {}, {}
    for name in model.input_names:
        first[owner[name]] = -1
    for step, layer in enumerate(model.layers):
        first.setdefault(owner[layer.name], step)
        for tensor in layer.inputs:
            last[owner[tensor]] = step
    for name in model.output_names:
        last[owner[name]] = len(model.layers)
    live = max(sum(mb for o, mb in size.items() if first.get(o, 0) <= step <= last.get(o, first.get(o, 0)))
               for step in range(len(model.layers)))
    return sum(size.values()), live


def export_in_child(name, batch, directory):
    """The zoo model's ONNX file, written by another process so that this one
    starts without the export's memory."""
    code = f"import peers_common as pc; pc.export_zoo({name!r}, {batch}, {str(directory)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent)
    return pc.export_zoo(name, batch, directory)   # already there: only its path


class Steps:
    def __init__(self):
        self.rows = []
        tracemalloc.start()

    def mark(self, label):
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        self.rows.append((label, status_mb("VmRSS"), status_mb("VmHWM"), held / MB, peak / MB))

    def table(self):
        # numpy's allocations are traced when made, touched or not (np.empty)
        head = ["step", "RSS MB", "RSS change", "peak RSS so far MB", "Python/numpy held MB",
                "Python/numpy peak in step MB"]
        lines, before = [], None
        for label, rss, hwm, held, peak in self.rows:
            change = "" if before is None else f"{rss - before:+.1f}"
            lines.append([label, f"{rss:.1f}", change, f"{hwm:.1f}", f"{held:.1f}", f"{peak:.1f}"])
            before = rss
        return pc.markdown(head, lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a zoo name (exported to ONNX first) or a name for --onnx")
    p.add_argument("batch", type=int)
    p.add_argument("--onnx", help="run this ONNX file instead of the zoo model's export")
    p.add_argument("--devices", default="portable")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.onnx) if args.onnx else export_in_child(args.model, args.batch, scratch)
        steps = Steps()
        import clnn
        device = clnn.devices(args.devices)[:1]
        steps.mark("library + devices")
        model = clnn.load(str(path), batch=args.batch)
        steps.mark("clnn.load")
        session = clnn.InferenceSession(model, devices=device, plan=[1.0])
        steps.mark("InferenceSession")
        name = session.get_inputs()[0].name
        x = pc.input_for(session.get_inputs()[0].shape)
        session.run(None, {name: x})
        steps.mark("first run")
        for _ in range(args.runs - 1):
            session.run(None, {name: x})
        steps.mark(f"{args.runs - 1} more runs")
        del session
        gc.collect()
        steps.mark("session dropped")
        weights = sum(v.nbytes for layer in model.layers for v in layer.weights().values()) / MB
        tensors, live = tensor_sizes(model)
        del model
        gc.collect()
        steps.mark("model dropped")
    print(f"{args.model} batch {args.batch} on {device[0].id}\n")
    print(steps.table())
    print(f"\nmodel weights (float32): {weights:.1f} MB; all tensors: {tensors:.1f} MB; "
          f"live at most at once: {live:.1f} MB")


if __name__ == "__main__":
    main()
