"""Timing sessions: medians over repeated runs after warm-up, per-layer
device times, and the zoo against plan="auto"."""

import time
from pathlib import Path

from . import models
from .errors import ModelError
from .onnx_import import load
from .partition.planner import efficiency
from .session import InferenceSession
from .timing import interleaved_medians, random_feeds


def load_model(spec, batch=1):
    """A zoo name or the path of an ONNX file."""
    if spec in models.ZOO:
        return models.get(spec, batch=batch)
    if not Path(spec).is_file():
        raise ModelError(f"{spec!r} is neither a zoo model ({', '.join(models.ZOO)}) nor a file")
    return load(spec, batch=batch)


def median_latency(session, feeds, runs=10, warmup=2):
    """Median wall time of ``session.run`` in seconds, and all the samples."""
    (median,), (samples,) = interleaved_medians([lambda: session.run(None, feeds)], runs, warmup)
    return median, samples


def layer_table(session):
    """Per-layer kernel milliseconds on each device in the session's last run."""
    times = session.layer_times()
    ids = [d.id for d in session.devices]
    rows = [["layer", "split"] + ids]
    for layer in session.model.layers:
        if layer.is_view:
            continue
        placement = session.plan.placements[layer.name]
        cells = [f"{times.get(layer.name, {}).get(i, 0.0) * 1e3:.3f}" if i in times.get(layer.name, {}) else "-"
                 for i in ids]
        rows.append([layer.name, placement.dim or "whole"] + cells)
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if k >= 2 else c.ljust(w) for k, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def zoo_rows(devices, batches, runs=10, warmup=2, names=None, progress=None):
    """For each zoo model and batch: single-device medians, the auto plan's
    median, speedup, efficiency and the time calibration and planning took."""
    rows = []
    for name in names or models.ZOO:
        for batch in batches:
            model = models.get(name, batch=batch)
            feeds = random_feeds(model)
            started = time.perf_counter()
            auto = InferenceSession(model, devices=devices, plan="auto")
            planning = time.perf_counter() - started
            sessions = [InferenceSession(model, devices=[d], plan=[1.0]) for d in devices] + [auto]
            medians, _ = interleaved_medians([lambda s=s: s.run(None, feeds) for s in sessions], runs, warmup)
            singles = {d.id: t for d, t in zip(devices, medians)}
            auto_time = medians[-1]
            report = auto.partition_report
            rows.append({"model": name, "batch": batch, "gflop": model.flops() / 1e9, "single_ms":
                         {k: v * 1e3 for k, v in singles.items()}, "auto_ms": auto_time * 1e3,
                         "speedup": min(singles.values()) / auto_time,
                         "efficiency": efficiency(singles, auto_time),
                         "planning_s": planning,
                         "calibration_s": report.calibration_seconds if report else 0.0,
                         "fallback": report.fallback if report else "",
                         "placement": _placement_summary(auto.plan)})
            if progress:
                progress(rows[-1])
    return rows


def _placement_summary(plan):
    """e.g. "12 whole on opencl:nvidia:0, 3 split c" """
    counts = {}
    for placement in plan.placements.values():
        if placement.dim is None:
            key = "whole on " + placement.devices[placement.shares.index(max(placement.shares))]
        else:
            key = f"split {placement.dim}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda x: -x[1]))


def zoo_markdown(rows, devices):
    ids = [d.id for d in devices]
    head = ["model", "batch", "GFLOP"] + [f"{i} ms" for i in ids] + ["auto ms", "speedup", "efficiency",
                                                                       "plan+calibration s", "auto placement"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["batch"]), f"{r['gflop']:.3g}"] + [f"{r['single_ms'][i]:.3f}" for i in ids]
        cells += [f"{r['auto_ms']:.3f}", f"{r['speedup']:.2f}", f"{r['efficiency']:.2f}", f"{r['planning_s']:.1f}",
                  r["placement"] + (" (fallback)" if r["fallback"] else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
