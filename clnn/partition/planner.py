"""Chooses a placement for every layer by dynamic programming over the
layer sequence.

The model walks the layers in order in steps: one layer, or a few
consecutive layers that do not read each other (parallel branches, which may
go to different devices at once). A step's time is, over the devices it
uses, the slowest of (data it must receive + its kernels + their launches),
where devices on the same hardware (two PoCL devices on one CPU) add up
rather than overlap;
the run's time is the sum over steps plus fetching the outputs. The data a
device must receive follows from boxes, as in the executor: what the slice
reads minus what that device (or its memory) already holds, priced by the
measured cost of handing data between the two devices. The state of the
dynamic programme is the previous step's placement; inputs produced further
back are priced with the placements along the best path to that state.
"""

import itertools
import math
from dataclasses import dataclass

from ..box import Box
from ..plan import Placement, Plan
from ..storage import plan_storage, to_receive

SHARE_GRID = [round(0.05 * i, 2) for i in range(1, 20)]
SPLITS_KEPT = 3          # best shares kept per split dimension (by compute alone)
GROUP_MAX = 3            # layers a parallel step may hold
OPTIONS_PER_LAYER = 4    # options per layer combined inside a parallel step


@dataclass
class Link:
    """Handing ``n`` bytes from one device to another costs latency + n * per_byte."""
    latency: float
    per_byte: float

    def cost(self, nbytes):
        return self.latency + nbytes * self.per_byte


@dataclass
class Calibration:
    costs: dict              # device id -> DeviceCosts
    launch: dict             # device id -> seconds per launch
    run: dict                # device id -> seconds a run costs besides its launches
    links: dict              # (source id, target id) -> Link; "host" for the host side
    seconds: float = 0.0     # time spent measuring
    measured: int = 0        # layer shapes measured


def steps_of(model):
    """Kernel layers grouped into steps of consecutive independent layers."""
    steps, current = [], []
    for layer in model.layers:
        if layer.is_view:
            continue
        produced = {x.name for x in current}
        if current and len(current) < GROUP_MAX and not (set(_sources(model, layer)) & produced):
            current.append(layer)
        else:
            if current:
                steps.append(current)
            current = [layer]
    if current:
        steps.append(current)
    return steps


def _sources(model, layer):
    """The kernel layers whose outputs ``layer`` reads (through views)."""
    found = []
    for tensor in layer.inputs:
        producer = model.producer.get(tensor)
        while producer is not None and producer.is_view and not producer.in_place_inputs():
            producer = model.producer.get(producer.inputs[0])
        if producer is not None and producer.is_view:  # a concat written in place: its inputs' producers
            found.extend(_sources(model, producer))
        elif producer is not None:
            found.append(producer.name)
    return found


class Planner:
    def __init__(self, model, devices, calibration, splits=True):
        self.model = model
        self.splits = splits
        self.devices = list(devices)
        self.ids = [d.id for d in self.devices]
        self.hardware = {d.id: d.identity for d in self.devices}
        self.cal = calibration
        self.views = plan_storage(model)
        self.steps = steps_of(model)

    # costs of one layer --------------------------------------------------------------
    def compute(self, layer, placement):
        """{device id: seconds of kernels and launches} for a placement."""
        found = {}
        for device_id, share in zip(placement.devices, placement.shares):
            if share > 0:
                seconds = self.cal.costs[device_id].time(layer, share) + self.cal.launch[device_id]
                found[device_id] = found.get(device_id, 0.0) + seconds
        return found

    def layer_options(self, layer):
        options = [Placement.whole(i) for i in self.ids]
        if len(self.ids) < 2 or not self.splits:
            return options
        pair = tuple(self._fastest_two(layer))
        for dim in ("c", "h", "n"):
            if not layer.splittable(dim) or layer.out_shape["nch".index(dim)] < 2 * layer.granule(dim):
                continue
            scored = []
            for share in SHARE_GRID:
                placement = Placement(pair, (share, 1.0 - share), dim)
                if len(placement.boxes(layer.out_shape, layer.granule(dim))) == 2:
                    scored.append((max(self.compute(layer, placement).values()), placement))
            options += [p for _, p in sorted(scored, key=lambda x: x[0])[:SPLITS_KEPT]]
        return options

    def _fastest_two(self, layer):
        return sorted(self.ids, key=lambda i: self.compute(layer, Placement.whole(i))[i])[:2]

    def step_options(self, step):
        per_layer = [self.layer_options(layer) for layer in step]
        if len(step) == 1:
            return [{step[0].name: p} for p in per_layer[0]]
        ranked = []
        for layer, options in zip(step, per_layer):
            whole = [p for p in options if p.dim is None]
            splits = sorted((p for p in options if p.dim is not None),
                            key=lambda p: max(self.compute(layer, p).values()))
            ranked.append(whole + splits[:max(OPTIONS_PER_LAYER - len(whole), 0)])
        return [dict(zip((layer.name for layer in step), combo)) for combo in itertools.product(*ranked)]

    # data movement ----------------------------------------------------------------
    def _writes(self, layer, placement):
        """(device id, storage, storage box) written by a layer's placement."""
        view = self.views[layer.name]
        storage_shape = self.model.shapes[view.storage]
        found = []
        for device_id, box in placement.boxes(layer.out_shape, layer.granule(placement.dim) if placement.dim else 1):
            for part in layer.written_boxes(box):
                found.append((device_id, view.storage, view.storage_box(part, storage_shape)))
        return found

    def _link(self, source, target):
        return self.cal.links.get((source, target), Link(0.0, 0.0))

    def receive(self, layer, placement, placed):
        """{device id: seconds receiving what the slice on it reads} given
        where earlier layers were placed (``placed``: name -> Placement)."""
        found = {}
        shapes = self.model.shapes
        for device_id, box in placement.boxes(layer.out_shape, layer.granule(placement.dim) if placement.dim else 1):
            incoming = {}
            for index, tensor in enumerate(layer.inputs):
                needed = layer.input_box(box, index)
                if needed is None or needed.empty:
                    continue
                view = self.views[tensor]
                wanted = view.storage_box(needed, shapes[view.storage])
                writes = [(source, written) for source, storage, written in self._producers(tensor, placed)
                          if storage == view.storage]
                held_here = [written for source, written in writes if source == device_id]
                elsewhere = [(written, source) for source, written in writes if source != device_id]
                for source, piece in to_receive(wanted, held_here, elsewhere):
                    if source is not None:
                        incoming[source] = incoming.get(source, 0) + piece.count(shapes[view.storage][3]) * 4
            found[device_id] = sum(self._link(s, device_id).cost(n) for s, n in incoming.items())
        return found

    def _producers(self, tensor, placed):
        if tensor in self.model.input_names:
            shape = self.model.shapes[tensor]
            return [("host", tensor, Box.whole(shape))]
        found = []
        for name in _sources(self.model, self.model.producer[tensor]) if self.model.producer[tensor].is_view \
                else [tensor]:
            found += self._writes(self.model.producer[name], placed[name])
        return found

    # the programme --------------------------------------------------------------
    def layer_busy(self, layer, placement, placed):
        """{device id: seconds receiving its slice's inputs and running its kernels}."""
        busy = self.compute(layer, placement)
        for device_id, seconds in self.receive(layer, placement, placed).items():
            busy[device_id] = busy.get(device_id, 0.0) + seconds
        return busy

    def step_time(self, step, option, placed):
        busy = {}
        for layer in step:
            for device_id, seconds in self.layer_busy(layer, option[layer.name], placed).items():
                busy[device_id] = busy.get(device_id, 0.0) + seconds
        per_hardware = {}
        for device_id, seconds in busy.items():
            key = self.hardware[device_id]
            per_hardware[key] = per_hardware.get(key, 0.0) + seconds
        return max(per_hardware.values())

    def finish_time(self, placed):
        """Bringing the outputs to the host, and a run's fixed cost."""
        used = {d for p in placed.values() for d, share in zip(p.devices, p.shares) if share > 0}
        seconds = max(self.cal.run[d] for d in used)
        for name in self.model.output_names:
            for source, storage, box in self._producers(name, placed):
                if source != "host":
                    seconds += self._link(source, "host").cost(box.count(self.model.shapes[storage][3]) * 4)
        return seconds

    def best(self):
        """(Plan, predicted seconds, {layer: predicted seconds of its step})."""
        states = [(0.0, {}, {})]  # (time so far, placements, step time per layer)
        for step in self.steps:
            new_states = []
            for option in self.step_options(step):
                best = None
                for total, placed, times in states:
                    seen = dict(placed, **option)
                    seconds = self.step_time(step, option, seen)
                    if best is None or total + seconds < best[0]:
                        best = (total + seconds, seen, dict(times, **{layer.name: seconds for layer in step}))
                new_states.append(best)
            states = new_states
        total, placed, times = min(((t + self.finish_time(p), p, s) for t, p, s in states), key=lambda x: x[0])
        return Plan(self.model, placed, self.ids), total, times

    def batch_split(self):
        """(Plan, predicted seconds, {layer: predicted seconds}) of the data-
        parallel plan, or None where the batch cannot split: every layer that
        can split on the batch does so at one share between the two devices
        fastest on the whole model, so nothing crosses between layers and
        neither device waits for the other (the executor orders only uses of
        the same memory). Unlike the layer-by-layer programme, which prices
        each step as a barrier, its time is the busier hardware's sum; the
        share is the count of whole batch items that balances them best."""
        layers = [layer for step in self.steps for layer in step]
        batch = self.model.shapes[self.model.input_names[0]][0]
        if len(self.ids) < 2 or not self.splits or batch < 2:
            return None
        pair = tuple(sorted(self.ids, key=self.single)[:2])
        split = {layer.name for layer in layers
                 if layer.splittable("n") and layer.out_shape[0] >= 2 * layer.granule("n")}
        if not split:
            return None
        found = None
        for items in range(1, batch):
            share = items / batch
            placed = {layer.name: Placement(pair, (share, 1.0 - share), "n") if layer.name in split
                      else Placement.whole(pair[0]) for layer in layers}
            busy, times = {}, {}
            for layer in layers:
                per_device = self.layer_busy(layer, placed[layer.name], placed)
                for device_id, seconds in per_device.items():
                    busy[self.hardware[device_id]] = busy.get(self.hardware[device_id], 0.0) + seconds
                times[layer.name] = max(per_device.values())
            total = max(busy.values()) + self.finish_time(placed)
            if found is None or total < found[1]:
                found = (Plan(self.model, placed, self.ids), total, times)
        return found

    def single(self, device_id):
        """Predicted seconds of the whole model on one device."""
        placed = {layer.name: Placement.whole(device_id) for step in self.steps for layer in step}
        return sum(self.single_layers(device_id).values()) + self.finish_time(placed)

    def single_layers(self, device_id):
        """{layer: predicted seconds of its step} on one device."""
        placed = {layer.name: Placement.whole(device_id) for step in self.steps for layer in step}
        found = {}
        for step in self.steps:
            seconds = self.step_time(step, placed, placed)
            found.update({layer.name: seconds for layer in step})
        return found


def efficiency(single_times, plan_time):
    """T_ideal / T_plan, T_ideal = 1 / sum(1 / T_device) over single devices."""
    ideal = 1.0 / sum(1.0 / t for t in single_times.values() if t > 0 and math.isfinite(t))
    return ideal / plan_time


