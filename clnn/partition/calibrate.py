"""Calibration: measures what the cache does not hold yet for a model on a
set of devices, and stores it."""

import logging
import time

from ..cache_files import device_key, seconds
from .cache import CalibrationCache, calibration_key
from .costmodel import DeviceCosts, clean_layers, signature
from .measure import handoff, launch_cost, slice_times
from .planner import Calibration, Link

log = logging.getLogger("clnn")

# sizes (float32 elements) of the two hand-overs that fix a link's latency and per-byte cost
# (16 MB, so that a fast copy still takes well over the latency)
SMALL, LARGE = 256, 1 << 22


def clean_device_record(record):
    """(what of a device's record fits its schema, [what was dropped])."""
    kept, dropped = {}, []
    launch, run = seconds(record.get("launch")), seconds(record.get("run"))
    if launch is not None and run is not None:
        kept["launch"], kept["run"] = launch, run
    elif "launch" in record or "run" in record:
        dropped.append("the launch and run costs are not numbers of seconds")
    if "layers" in record:
        kept["layers"], bad = clean_layers(record["layers"])
        dropped += bad
    return kept, dropped


def clean_link_record(record):
    """(a link's record if it fits its schema, else {}, [what was dropped])."""
    latency, per_byte = seconds(record.get("latency")), seconds(record.get("per_byte"))
    if latency is None or per_byte is None:
        return {}, ["the link's latency and per-byte cost are not numbers of seconds"] if record else []
    return {"latency": latency, "per_byte": per_byte}, []


def _kernel_layers(model):
    return [layer for layer in model.layers if not layer.is_view]


def calibrate(model, devices, grouping=None, memory=None, cache=None, progress=None):
    """A Calibration covering every layer of ``model`` on every device and
    every ordered pair of devices; ``progress(done, total, what)`` is called
    as measurements finish."""
    cache = cache or CalibrationCache()
    started = time.perf_counter()
    records = {d.id: cache.load(calibration_key(d), clean_device_record) for d in devices}
    costs = {d.id: DeviceCosts(d, records[d.id]) for d in devices}
    todo = []
    for d in devices:
        if "launch" not in records[d.id]:
            todo.append(("launch", d, None))
        todo += [("layer", d, layer) for layer in _unpredictable(model, costs[d.id])]
    pairs = [(a, b) for a in devices for b in devices if a.id != b.id]
    link_records = {}
    for a, b in pairs:
        key = _link_key(a, b, grouping, memory)
        link_records[(a.id, b.id)] = cache.load(key, clean_link_record)
        if "latency" not in link_records[(a.id, b.id)]:
            todo.append(("link", a, b))
    done = measured = 0
    while todo:
        total = done + len(todo)
        for what, device, item in todo:
            if what == "launch":
                records[device.id]["launch"], records[device.id]["run"] = launch_cost(device)
            elif what == "layer":
                costs[device.id].add(item, slice_times(item, device))
                measured += 1
            else:
                link_records[(device.id, item.id)] = _measure_link(device, item, grouping, memory)
            done += 1
            if progress:
                progress(done, total, f"{what} {device.id}" + (f" {item.name}" if what == "layer" else ""))
        # new measurements refit the latency models, which may now trust a
        # layer less: measure whatever became unpredictable
        todo = [("layer", d, layer) for d in devices for layer in _unpredictable(model, costs[d.id])]
    for d in devices:
        cache.save(calibration_key(d), records[d.id])
    by_id = {d.id: d for d in devices}
    for (a, b), record in link_records.items():
        cache.save(_link_key(by_id[a], by_id[b], grouping, memory), record)
    links = {pair: Link(r["latency"], r["per_byte"]) for pair, r in link_records.items()}
    for d in devices:  # the host side: inputs in and outputs out of a discrete device's memory
        half = min((links[(d.id, o.id)] for o in devices if o.id != d.id), key=lambda link: link.per_byte,
                   default=Link(0.0, 0.0))
        unified = d.unified_memory if memory in (None, "auto") else memory == "unified"
        side = Link(0.0, 0.0) if unified else Link(half.latency / 2, half.per_byte / 2)
        links[("host", d.id)] = links[(d.id, "host")] = side
    seconds = time.perf_counter() - started
    if todo:
        log.debug("calibrated %d items in %.1f s", len(todo), seconds)
    return Calibration(costs, {d.id: records[d.id]["launch"] for d in devices},
                       {d.id: records[d.id]["run"] for d in devices}, links, seconds, measured)


def _unpredictable(model, costs):
    """Layers of distinct shapes that ``costs`` has neither measured nor can
    predict."""
    found = {}
    for layer in _kernel_layers(model):
        if costs.measured(layer) is None and not costs.confident(layer):
            found.setdefault(signature(layer), layer)
    return list(found.values())


def _link_key(a, b, grouping, memory):
    return f"link|{device_key(a)}|{device_key(b)}|{grouping or 'default'}|{memory or 'auto'}"


def _measure_link(source, target, grouping, memory):
    small = handoff(source, target, SMALL, grouping, memory)
    large = handoff(source, target, LARGE, grouping, memory)
    per_byte = max(large - small, 0.0) / ((LARGE - SMALL) * 4)
    return {"latency": max(small - SMALL * 4 * per_byte, 0.0), "per_byte": per_byte}
