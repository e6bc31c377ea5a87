"""torch with cuDNN beside clnn on NVIDIA's OpenCL and on clnn's CUDA plugin
(issue 11), for the GPU machine.

The two clnn systems run the same ONNX file with the whole model on one
device (plan [1.0]). torch runs the equivalent module with the same weights:
for the zoo (resnet50 and mobilenet_v2 among it), zoo_torch.py's definitions
loaded from the clnn model's layers; for a name outside the zoo, torchvision's
module of that name (seeded random weights), exported to the ONNX file that
clnn runs. Every output is
checked against torch's. fp32 throughout: TF32 off; cudnn.benchmark on.

Timing: one process; each system warmed up, then the systems take turns run
after run and the medians are kept. ``ms`` is a whole call from a numpy input
to a numpy output, as clnn's session.run does (for torch: copy in, forward,
copy out); the cudnn row also holds ``ms_resident``, torch's forward alone on
an input already on the GPU. A model that a system refuses gets a row with
ms null and the error.

Results: OUTPUT.json (rows: machine, model, batch, system, ms, ...) and
OUTPUT.md, merged as cpu_peers.py does. On the GPU machine (repository root,
after `source .whl/gpu-env.sh`):

  python3 benchmarks/gpu_peers.py --output $OUT/gpu-peers

Here, without torch or a GPU, --quick runs the non-torch paths on PoCL:

  python benchmarks/gpu_peers.py --quick --opencl-devices portable --output /tmp/gpu-peers
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers_common as pc  # noqa: E402

SYSTEMS = ("cudnn", "clnn-opencl", "clnn-cuda")
RESULTS = Path(__file__).resolve().parent / "results"


def torch_fp32():
    """torch with TF32 off everywhere (a plain fp32 comparison)."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("highest")
    return torch


def torch_module(name, batch):
    """The torch module of a model, on the GPU."""
    if name in pc.ZOO:
        import clnn
        import zoo_torch
        module = zoo_torch.from_clnn(name, clnn.models.get(name, batch=batch))
    else:
        module = pc.torchvision_module(name)
    return module.cuda()


def onnx_file(name, batch, workdir):
    if name in pc.ZOO:
        return pc.export_zoo(name, batch, workdir)
    return pc.at_batch(pc.export_torchvision(name, workdir), batch, workdir)


def cudnn_calls(name, batch, x):
    """(numpy -> numpy call, call on a resident input) for torch on the GPU."""
    torch = torch_fp32()
    module = torch_module(name, batch)
    resident = torch.from_numpy(x).cuda()

    def whole(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x).cuda()).cpu().numpy()

    def forward():
        with torch.inference_mode():
            module(resident)
        torch.cuda.synchronize()

    return whole, forward


def case_rows(name, batch, args):
    """The rows of one model at one batch: every system built, checked against
    torch (or, without it, against the first system that ran), then timed."""
    errors, runs, outputs, setup = {}, {}, {}, {}
    try:
        path = onnx_file(name, batch, args.workdir)
        x = pc.input_for(pc.input_shape(path))
    except Exception as exc:  # no torch for a torchvision model, an export that failed
        return [dict(system=s, ms=None, error=pc.error_text(exc)) for s in args.systems]
    extra_calls = {}
    for system in args.systems:
        started = time.perf_counter()
        try:
            if system == "cudnn":
                runs[system], extra_calls["cudnn-resident"] = cudnn_calls(name, batch, x)
            else:
                devices = args.opencl_devices if system == "clnn-opencl" else args.cuda_devices
                runs[system] = pc.clnn_runner(path, batch, devices)
            outputs[system] = runs[system](x)
        except Exception as exc:
            errors[system] = pc.error_text(exc)
            runs.pop(system, None)
        setup[system] = round(time.perf_counter() - started, 2)
    calls = {s: (lambda r=r: r(x)) for s, r in runs.items()} | extra_calls
    samples = pc.interleaved(calls, args.warmup, args.min_runs, args.runs, args.budget_s * len(calls))
    reference = next(iter(outputs.values()), None)
    rows = []
    for system in args.systems:
        row = {"system": system, "ms": pc.median_ms(samples[system]) if system in samples else None,
               "runs": len(samples.get(system, [])), "setup_s": setup.get(system)}
        if system == "cudnn" and "cudnn-resident" in samples:
            row["ms_resident"] = pc.median_ms(samples["cudnn-resident"])
        if system in outputs:
            row["relerr"] = pc.relerr(outputs[system], reference)
            row["checked_against"] = next(iter(outputs))
        if system in errors:
            row["error"] = errors[system]
        rows.append(row)
    return rows


def markdown_text(rows):
    def line(cell):
        ms = {s: cell[s].get("ms") for s in SYSTEMS}
        return [pc.fmt(ms["cudnn"]), pc.fmt(cell["cudnn"].get("ms_resident")), pc.fmt(ms["clnn-opencl"]),
                pc.fmt(ms["clnn-cuda"]), pc.fmt(pc.ratio(ms["clnn-opencl"], ms["cudnn"])),
                pc.fmt(pc.ratio(ms["clnn-cuda"], ms["clnn-opencl"])), pc.max_relerr(cell)]

    head = ["cudnn ms", "cudnn resident ms", "clnn-opencl ms", "clnn-cuda ms", "clnn-opencl / cudnn",
            "clnn-cuda / clnn-opencl", "max relerr"]
    return ("# torch cuDNN beside clnn on the GPU (median ms per call, numpy in, numpy out)\n\n"
            "cudnn resident: torch's forward alone, input already on the GPU.\n\n"
            + pc.sections(rows, SYSTEMS, head, line) + "\n" + pc.error_notes(rows))


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(pc.ZOO), help="zoo names, or torchvision's model names")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--opencl-devices", default="nvidia", help="clnn selector for clnn-opencl")
    p.add_argument("--cuda-devices", default="cuda", help="clnn selector for clnn-cuda")
    pc.timing_arguments(p, warmup=3, runs=100, budget_s=0.8)
    p.add_argument("--deadline-s", type=float, default=330,
                   help="cases not started by then get rows with the error 'skipped' (one call's limit)")
    p.add_argument("--machine", default="gpu")
    p.add_argument("--output", default=str(RESULTS / "gpu-peers"))
    p.add_argument("--workdir", help="where the ONNX files go (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="lenet5 and fcnn at batch 1, few runs")
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.batches, args.runs, args.budget_s = "lenet5,fcnn", "1", 10, 0.2
        args.machine = "quick" if args.machine == "gpu" else args.machine
    args.systems = [s for s in args.systems.split(",") if s]
    return args


def main(argv=None):
    args = parse(argv)
    started = time.perf_counter()
    host = pc.machine_info()
    rows = []
    with tempfile.TemporaryDirectory(prefix="clnn-gpu-peers-") as scratch:
        args.workdir = Path(args.workdir or scratch)
        args.workdir.mkdir(parents=True, exist_ok=True)
        for name in [m for m in args.models.split(",") if m]:
            for batch in [int(b) for b in args.batches.split(",")]:
                if time.perf_counter() - started > args.deadline_s:
                    found = [dict(system=s, ms=None, error="skipped: --deadline-s reached") for s in args.systems]
                else:
                    found = case_rows(name, batch, args)
                for row in found:
                    row = {"machine": args.machine, "model": name, "batch": batch, **row, "host": host}
                    pc.record(args.output + ".json", row, rows)
    text = markdown_text(pc.read_rows(args.output + ".json"))
    Path(args.output + ".md").write_text(text)
    print(text)
    print(f"{time.perf_counter() - started:.0f} s in all")
    disagree = [r for r in rows if r.get("relerr") is not None and r["relerr"] > pc.AGREEMENT]
    for r in disagree:
        print(f"OUTPUTS DISAGREE: {r['model']} b{r['batch']} {r['system']}: {r['relerr']:.2e} against "
              f"{r['checked_against']}", file=sys.stderr)
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
