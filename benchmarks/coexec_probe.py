"""Why a CPU + GPU-slice split measures slower than its prediction: one
model and batch, timed interleaved in one process, on the CPU alone, the
slice alone, and static plans that split every layer on the batch (no data
crosses between layers; shares from the single-device times) or on output
channels. Run it twice, the second time with POCL_MAX_PTHREAD_COUNT one
below the core count, to see whether PoCL's threads starve the thread that
feeds the GPU.

    source .whl/gpu-env.sh && python3 benchmarks/coexec_probe.py --model alexnet --batch 16 --sms 8
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import clnn  # noqa: E402
from clnn.plan import Placement, Plan  # noqa: E402
from clnn.timing import interleaved_medians, random_feeds  # noqa: E402


def split_plan(model, ids, cpu_share, dim):
    """Every layer that can split on ``dim`` split (cpu_share, rest); the others on the GPU."""
    placements = {}
    for layer in model.layers:
        if layer.is_view:
            continue
        ok = layer.splittable(dim) and layer.out_shape["nch".index(dim)] >= 2 * layer.granule(dim)
        placements[layer.name] = Placement(ids, (cpu_share, 1 - cpu_share), dim) if ok else Placement.whole(ids[1])
    return Plan(model, placements, ids)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="alexnet")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--sms", default="8")
    p.add_argument("--gpu", help="the GPU's selector instead of cuda:sms=SMS (a stand-in where there is none)")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", help="append the result here")
    args = p.parse_args()
    cpu, gpu = clnn.select("portable")[0], clnn.select(args.gpu or f"cuda:sms={args.sms}")[-1]
    model = clnn.models.get(args.model, batch=args.batch)
    feeds = random_feeds(model)
    ids = [cpu.id, gpu.id]
    alone = {name: clnn.InferenceSession(model, devices=[d], plan=[1.0]) for name, d in (("cpu", cpu), ("gpu", gpu))}
    (t_cpu, t_gpu), _ = interleaved_medians([lambda s=s: s.run(None, feeds) for s in alone.values()], args.runs, 1)
    share = t_gpu / (t_cpu + t_gpu)  # the CPU's share that makes both finish together
    plans = {f"batch split {share:.2f}": split_plan(model, ids, share, "n"),
             f"channel split {share:.2f}": split_plan(model, ids, share, "c")}
    sessions = {name: clnn.InferenceSession(model, devices=[cpu, gpu], plan=plan) for name, plan in plans.items()}
    medians, _ = interleaved_medians([lambda s=s: s.run(None, feeds) for s in sessions.values()], args.runs, 1)
    ideal = 1 / (1 / t_cpu + 1 / t_gpu)
    row = {"model": args.model, "batch": args.batch, "gpu_sms": gpu.compute_units,
           "pocl_threads": os.environ.get("POCL_MAX_PTHREAD_COUNT", "all"), "cpu_ms": t_cpu * 1e3,
           "gpu_ms": t_gpu * 1e3, "ideal_ms": ideal * 1e3, **{f"{k} ms": m * 1e3 for k, m in zip(sessions, medians)}}
    print(json.dumps(row))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
