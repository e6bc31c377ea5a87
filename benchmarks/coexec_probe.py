"""Why a CPU + GPU-slice split measures slower than its prediction: one
model and batch, timed interleaved in one process, on the CPU alone, the
slice alone, and static plans that split every layer on the batch (no data
crosses between layers; shares from the single-device times) or on output
channels. Run it twice, the second time with POCL_MAX_PTHREAD_COUNT one
below the core count, to see whether PoCL's threads starve the thread that
feeds the GPU; --parts times the batch split's two parts as models of their
own, alone and together.

    source .whl/gpu-env.sh && python3 benchmarks/coexec_probe.py --model alexnet --batch 16 --sms 8
"""

import argparse
import json
import os
import sys
import threading
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


def busy_intervals(events):
    """Merged (start, end) intervals, in us, that ``events`` cover."""
    merged = []
    for start, end in sorted((e["ts"], e["ts"] + e["dur"]) for e in events):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def overlap(a, b):
    """Microseconds during which both interval lists are busy."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def trace_summary(session, feeds, path):
    """One traced run: its span, the host's spans (enqueue, wait), each
    device's busy time and the time the devices are busy together (ms)."""
    session.run(None, feeds, trace=path)
    events = [e for e in json.loads(Path(path).read_text())["traceEvents"] if e.get("ph") == "X"]
    names = {e["tid"]: e["args"]["name"] for e in json.loads(Path(path).read_text())["traceEvents"]
             if e.get("ph") == "M"}
    tracks = {names[tid]: busy_intervals([e for e in events if e["tid"] == tid]) for tid in names}
    devices = [t for t in tracks if t != "host"]
    span = max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)
    summary = {"span_ms": span / 1e3, **{f"host {e['name']}_ms": e["dur"] / 1e3 for e in events if e["tid"] == 0},
               **{f"{t} busy_ms": sum(e - s for s, e in tracks[t]) / 1e3 for t in devices}}
    if len(devices) == 2:
        summary["device overlap_ms"] = overlap(tracks[devices[0]], tracks[devices[1]]) / 1e3
    return summary


def parts(model_name, batch, items, cpu, gpu, runs):
    """The batch split as two models of their own (the CPU's items, the
    GPU's rest), each alone and both at once from two threads: where the
    CPU's part is slower beside the GPU's than alone, the two contend for the
    host; where it is slower alone than its share of the whole batch, a
    partial batch costs more per item."""
    sessions, feeds = [], []
    for device, count in ((cpu, items), (gpu, batch - items)):
        model = clnn.models.get(model_name, batch=count)
        sessions.append(clnn.InferenceSession(model, devices=[device], plan=[1.0]))
        feeds.append(random_feeds(model))

    def both():
        gpu_part = threading.Thread(target=sessions[1].run, args=(None, feeds[1]))
        gpu_part.start()
        sessions[0].run(None, feeds[0])
        gpu_part.join()

    calls = [lambda: sessions[0].run(None, feeds[0]), lambda: sessions[1].run(None, feeds[1]), both]
    (t_cpu, t_gpu, t_both), _ = interleaved_medians(calls, runs, 1)
    return {f"cpu part {items} ms": t_cpu * 1e3, f"gpu part {batch - items} ms": t_gpu * 1e3,
            "parts in two threads ms": t_both * 1e3}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="alexnet")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--sms", default="8")
    p.add_argument("--gpu", help="the GPU's selector instead of cuda:sms=SMS (a stand-in where there is none)")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", help="append the result here")
    p.add_argument("--trace", help="write each session's Chrome trace as TRACE-<session>.json and summarise it")
    p.add_argument("--parts", action="store_true", help="also time the batch split's parts as models of their own")
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
    if args.parts:
        row.update(parts(args.model, args.batch, max(1, round(share * args.batch)), cpu, gpu, args.runs))
    if args.trace:
        row["traces"] = {name: trace_summary(session, feeds, f"{args.trace}-{name.split()[0]}.json")
                         for name, session in {**alone, **sessions}.items()}
    print(json.dumps(row))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
