"""Timing sessions: medians over repeated runs after warm-up, and per-layer
device times from the queues' profiling events."""

import time
from pathlib import Path

import numpy as np

from . import models
from .errors import ModelError


def load_model(spec, batch=1):
    """A zoo name or the path of an ONNX file."""
    if spec in models.ZOO:
        return models.get(spec, batch=batch)
    if not Path(spec).is_file():
        raise ModelError(f"{spec!r} is neither a zoo model ({', '.join(models.ZOO)}) nor a file")
    from .onnx_import import load
    return load(spec, batch=batch)


def random_feeds(model, seed=0):
    rng = np.random.default_rng(seed)
    return {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in model.inputs}


def median_latency(session, feeds, runs=10, warmup=2):
    """Median wall time of ``session.run`` in seconds, and all the samples."""
    for _ in range(warmup):
        session.run(None, feeds)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feeds)
        samples.append(time.perf_counter() - started)
    return float(np.median(samples)), samples


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
