"""Timing helpers shared by the planner and the tools: random feeds, wall
medians over interleaved runs, and device times from a run's timeline
(Executor.timeline(): kernels and copies with their profiling times)."""

import time

import numpy as np


def random_feeds(model, seed=0):
    """Standard-normal float32 feeds for every input of ``model``."""
    rng = np.random.default_rng(seed)
    return {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in model.inputs}


def interleaved_medians(calls, runs=10, warmup=1):
    """Median wall seconds of each call, and the samples; the calls take
    turns run after run, so that a drift of the machine (clock boosts,
    other load, a device's threads winding down) biases none of them."""
    for call in calls:
        for _ in range(warmup):
            call()
    samples = [[] for _ in calls]
    for _ in range(runs):
        for call, found in zip(calls, samples):
            started = time.perf_counter()
            call()
            found.append(time.perf_counter() - started)
    return [float(np.median(found)) for found in samples], samples


def timeline_samples(executor, feeds, runs, collect):
    """``collect(executor.timeline())`` after each of ``runs`` runs that
    follow one warm-up run."""
    executor.run(feeds)
    samples = []
    for _ in range(runs):
        executor.run(feeds)
        samples.append(collect(executor.timeline()))
    return samples


def kernel_span(timeline):
    """Seconds from the first kernel's start to the last kernel's end."""
    spans = [(r["start"], r["end"]) for r in timeline if r["kind"] == "kernel"]
    return (max(e for _, e in spans) - min(s for s, _ in spans)) * 1e-9


def layer_times(timeline):
    """{layer: {device: seconds}} of kernel time in one run."""
    found = {}
    for r in timeline:
        if r["kind"] == "kernel":
            per_device = found.setdefault(r["layer"], {})
            per_device[r["device"]] = per_device.get(r["device"], 0.0) + (r["end"] - r["start"]) * 1e-9
    return found


def box_times(timeline):
    """Kernel seconds per slice (box), in the order the slices were compiled."""
    totals = {}
    for r in timeline:
        if r["kind"] == "kernel":
            totals[r["box"]] = totals.get(r["box"], 0.0) + (r["end"] - r["start"]) * 1e-9
    return list(totals.values())
