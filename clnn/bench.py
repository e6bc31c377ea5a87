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
