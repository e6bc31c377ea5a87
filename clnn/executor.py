"""Runs a model under a plan on its devices: storage for every tensor, the
weights in every context that needs them, and the run compiled once into a
schedule that each call replays.
"""

import threading
import time

import numpy as np

from .box import Box
from .errors import DeviceError, InputError
from .host import page_aligned
from .ops.base import In, Out, Param, Scratch, Target
from .runtime import contexts_for
from .runtime.memory import SharedTensor
from .schedule import Coherence, Schedule
from .storage import plan_storage, share_storage


class Executor:
    def __init__(self, model, plan, devices, grouping=None, memory=None, pool=None, targets=None,
                 share_memory=True):
        """Runs ``model`` under ``plan`` on ``devices``; ``grouping`` and
        ``memory`` choose contexts (clnn.runtime.contexts) from ``pool``;
        ``targets`` ({device id: clnn.ops.Target}) choose and tune the
        kernels where a device's own defaults should not. ``share_memory``:
        tensors whose lives do not overlap take turns in one slot of memory
        (off, every tensor keeps its own, so that a NaN-poisoned run shows
        every read of memory no kernel wrote)."""
        self.model = model
        self.plan = plan
        used = plan.used_devices()
        # only the devices the plan gives work to take part (and are waited for)
        self.devices = {d.id: d for d in devices if d.id in used} or {devices[0].id: devices[0]}
        self.targets = {i: (targets or {}).get(i) or Target.of(d) for i, d in self.devices.items()}
        self.contexts = contexts_for(list(self.devices.values()), grouping, memory, pool)
        self.context_of = {d.id: c for c in self.contexts for d in c.devices}
        self.views = plan_storage(model)
        self.storages = {}
        self._previous = {}   # tensor -> the tensor that had its slot of memory before it, or None
        for number, slot in enumerate(share_storage(model, self.views, share_memory)):
            memory = SharedTensor((slot.size,), self.contexts, f"slot{number}")
            for previous, storage in zip([None] + slot.tenants, slot.tenants):
                self.storages[storage] = memory.tenant(model.shapes[storage], storage)
                self._previous[self.storages[storage]] = self.storages.get(previous)
        self._params = {}
        self._scratch = {}  # {(device id, Scratch index): (buffer, bytes)}
        self._lock = threading.Lock()
        self.last_events, self.last_host_spans = [], []  # of the last run
        self._unfinished = False  # a run was interrupted before its queues finished
        # timeline() reads every run; False lets a backend that replays runs
        # (CUDA graphs) leave out the per-command events that it needs
        self.timed = True
        self.schedule = Schedule()
        self._compile()

    def _storage(self, tensor):
        return self.storages[self.views[tensor].storage]

    def _compile(self):
        slices = [(layer, self.devices[device_id], box, layer.launches(self.targets[device_id], box))
                  for layer in self.model.layers if not layer.is_view
                  for device_id, box in self.plan.slices(layer)]
        self._alloc_scratch(slices)
        coherence = Coherence(self.schedule, self._previous)
        for name in self.model.input_names:
            storage = self._storage(name)
            coherence.host_wrote(storage, storage.whole())
        for layer, device, box, launches in slices:
            self._compile_slice(coherence, layer, device, box, launches)
        for name in self.model.output_names:
            # adds the copies that bring outputs home; run() then waits for every queue
            coherence.need_on_host(self._storage(name), self._storage_box(name, Box.whole(self.model.shapes[name])))

    def _alloc_scratch(self, slices):
        """One work buffer per device and Scratch index, as large as the
        largest launch on that device asks for."""
        sizes = {}
        for _, device, _, launches in slices:
            for launch in launches:
                for value in launch.args.values():
                    if isinstance(value, Scratch):
                        key = (device.id, value.index)
                        sizes[key] = max(sizes.get(key, 0), value.nbytes)
        for (device_id, index), nbytes in sizes.items():
            self._scratch[device_id, index] = (self.context_of[device_id].alloc(nbytes), nbytes)

    def _storage_box(self, tensor, box):
        view = self.views[tensor]
        return view.storage_box(box, self.storages[view.storage].shape)

    def _compile_slice(self, coherence, layer, device, box, launches):
        context = self.context_of[device.id]
        target = self.targets[device.id]
        output = self._storage(layer.name)
        deps, touched = [], {output}
        for index, tensor in enumerate(layer.inputs):
            needed = layer.kernel_input_box(box, index, target)
            if needed is not None and not needed.empty:
                storage = self._storage(tensor)
                deps += coherence.need(storage, self._storage_box(tensor, needed), context, device)
                touched.add(storage)
        # the slot's previous tenant must be done with before this one writes there
        deps += coherence.hazards(output, context)
        command = None
        for launch in launches:
            bound = context.bind(launch.source, launch.kernel, launch.options,
                                 self._kernel_args(launch, layer, context, device))
            command = self.schedule.add(
                context, device,
                lambda wait_for, c=context, d=device, k=bound, g=launch.global_size, loc=launch.local_size:
                    c.launch(c.queue(d), k, g, loc, wait_for),
                deps, "kernel", layer.name, layer=layer.name, op=layer.op, box=str(box),
                flops=layer.flops() * box.count(layer.out_shape[3]) // max(
                    Box.whole(layer.out_shape).count(layer.out_shape[3]), 1))
            for storage in touched:
                coherence.touched(storage, context, command)
            deps = [command]
        if command is not None:
            for part in layer.written_boxes(box):
                coherence.wrote(self._storage(layer.name), self._storage_box(layer.name, part), context,
                                device, command)

    def _kernel_args(self, launch, layer, context, device):
        """The launch's arguments bound to this context's buffers: an In or
        Out as (buffer, element offset, batch stride), a Param as its
        buffer, or as a tensor that every batch item reads (stride 0), a
        Scratch as the device's work buffer."""
        params = self._layer_params(layer, context, self.targets[device.id])

        def tensor(arg):
            if isinstance(arg, Param):
                return [params[arg.name], np.int32(0), np.int32(0)]
            if not isinstance(arg, (In, Out)):
                raise DeviceError(f"{launch.kernel}: a tensor argument must be In, Out or Param, not {arg!r}")
            name = layer.name if isinstance(arg, Out) else layer.inputs[arg.index]
            view = self.views[name]
            storage = self.storages[view.storage]
            triple = view.kernel_args(storage.buffer(context), storage.shape)
            if isinstance(arg, Out):
                triple[1] += np.int32(arg.channel_offset * view.shape[2] * view.shape[3])
            elif arg.broadcast_batch:
                triple[2] = np.int32(0)
            return triple

        def buffer(arg):
            if isinstance(arg, Param):
                return params[arg.name]
            if isinstance(arg, Scratch):
                return self._scratch[device.id, arg.index][0]
            raise DeviceError(f"{launch.kernel}: a buffer argument must be Param or Scratch, not {arg!r}")

        return launch.flat_args(tensor, buffer)

    def _layer_params(self, layer, context, target):
        key = (layer.name, id(context), target)
        if key not in self._params:
            buffers = {}
            for name, array in layer.params(target).items():
                if context.unified:  # its devices read host memory in place: no second copy of the weights
                    home = page_aligned(array, array.dtype)
                    buffers[name] = context.alloc(home.nbytes, home=home.reshape(-1))
                else:
                    buffers[name] = context.alloc(array.nbytes)
                    context.upload(buffers[name], array)
            self._params[key] = buffers
        return self._params[key]

    def poison(self):
        """Fill every tensor with NaN, on the host and in every discrete
        context, so that an element no kernel wrote, or a read outside the
        box a slice declared it needs, shows in the outputs."""
        for storage in self.storages.values():
            storage.home[...] = np.nan
            for context in self.contexts:
                if not context.unified:
                    context.upload(storage.buffer(context), storage.home)
        # work buffers too: a kernel reading partial sums or tiles that no kernel wrote
        for (device_id, _), (buffer, nbytes) in self._scratch.items():
            self.context_of[device_id].upload(buffer, np.full(nbytes // 4, np.nan, np.float32))

    # running ---------------------------------------------------------------------
    def run(self, feeds):
        """``feeds``: {input name: float32 array of the model's shape}; returns
        the outputs in model order."""
        with self._lock:
            # events of commands in flight must not be dropped (see
            # Schedule._drain): a run's events stay referenced until the next
            # run, which first finishes what an interrupted run left running
            if self._unfinished:
                self._finish_queues()
            started = time.perf_counter_ns()
            for name, array in feeds.items():
                self._storage(name).home[...] = array.reshape(self.model.shapes[name])
            self.last_events = [None] * len(self.schedule.commands)
            self.schedule.run(self.last_events, self.timed)
            self._unfinished = True
            enqueued = time.perf_counter_ns()
            failures = self._finish_queues()
            self._unfinished = False
            if failures:  # a queue that cannot finish: its device is lost
                device, exc = failures[0]
                layer = self.schedule.last_kernel(device)
                raise DeviceError(f"a run of {self.model.name!r} failed on {device} (its last layer enqueued: "
                                  f"{layer}): {exc}", device=device.id, layer=layer) from exc
            failed = self.schedule.failure(self.last_events)
            if failed is not None:
                device, layer, exc = failed
                raise DeviceError(f"a run of {self.model.name!r} failed on {device} in {layer}: {exc}",
                                  device=device.id, layer=layer) from exc
            finished = time.perf_counter_ns()
            self.last_host_spans = [("enqueue", started, enqueued), ("wait", enqueued, finished)]
            return [self._read(name) for name in self.model.output_names]

    def _finish_queues(self):
        """Wait for every queue, even after one failed; the failures as
        (device, exception) pairs."""
        failures = []
        for context in self.contexts:
            for device in (d for d in context.devices if d.id in self.devices):
                try:
                    context.finish(device)
                except Exception as exc:
                    failures.append((device, exc))
        return failures

    def timeline(self):
        """Every command of the last run with its device start and end, in
        host perf_counter nanoseconds: dicts of kind, label, device, detail."""
        found = []
        for command, event in zip(self.schedule.commands, self.last_events):
            start, end = command.context.event_times(event)
            found.append({"kind": command.kind, "label": command.label, "device": command.device.id,
                          "start": start, "end": end, **command.detail})
        return found

    def _read(self, name):
        view = self.views[name]
        storage = self.storages[view.storage]
        if view.reshaped:
            data = storage.home.reshape(view.shape)
        else:
            data = storage.home[:, view.c_offset:view.c_offset + view.shape[1]]
        return np.array(data).reshape(self.model.dims[name])


def check_feeds(model, feeds):
    """Validated float32 arrays for every model input, or InputError."""
    if not isinstance(feeds, dict):
        raise InputError(f"feeds must be a dict of input name to array, got {type(feeds).__name__}")
    expected = {i.name: i for i in model.inputs}
    unknown = [k for k in feeds if k not in expected]
    if unknown:
        raise InputError(f"unknown input {unknown[0]!r}; the model's inputs are {list(expected)}")
    checked = {}
    for name, info in expected.items():
        if name not in feeds:
            raise InputError(f"missing input {name!r} (float32, shape {list(info.shape)})")
        value = feeds[name]
        if not isinstance(value, np.ndarray):
            raise InputError(f"input {name!r} must be a numpy array, got {type(value).__name__}")
        if value.dtype != np.float32:
            raise InputError(f"input {name!r} has dtype {value.dtype}; expected float32 (tensor(float))")
        if value.shape != tuple(info.shape):
            raise InputError(f"input {name!r} has shape {list(value.shape)}; expected {list(info.shape)}")
        checked[name] = value
    return checked
