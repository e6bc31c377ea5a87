"""InferenceSession: onnxruntime's API over clnn's executor."""

import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import InputError, PlanError
from .executor import Executor, check_feeds
from .graph import Graph, TensorInfo
from .onnx_import import load
from .partition import auto_plan
from .plan import Plan
from .runtime import select
from .timing import layer_times
from .trace import write_trace

log = logging.getLogger("clnn")

# batch sizes other than the first that a session with a symbolic batch keeps
# ready (each holds its own tensors); the least recently fed is dropped
KEPT_BATCH_SIZES = 4


def _as_model(model):
    if isinstance(model, Graph):
        return model
    return load(model, batch=1)


class InferenceSession:
    """Runs a model on the selected devices under a plan.

    ``model``: a clnn.Model, an ONNX file path, its bytes or an
    onnx.ModelProto. ``devices``: a selector (see clnn.devices) or a list of
    devices. ``plan``: "auto", a list of shares (one per device) applied to
    every layer that can be split, a clnn.Plan, or the path of a saved plan.
    ``contexts`` ("platform": one context per platform, "device": one per
    device) and ``memory`` ("auto", "unified", "discrete") override
    CLNN_CONTEXTS and CLNN_MEMORY.

    An ONNX model whose batch dimension is symbolic runs any batch size, as
    in onnxruntime: it is built at batch 1, and a feed of another batch size
    imports the model again at that size, with the same devices and kind of
    plan, on first use. ``plan``, ``partition_report`` and ``layer_times``
    describe the batch-1 session.
    """

    def __init__(self, model, devices=None, plan="auto", contexts=None, memory=None):
        self.model = _as_model(model)
        self.devices = select(devices)
        self._source = None if isinstance(model, Graph) or not self.model.symbolic_batch else model
        self._plan_argument = plan
        self._other_batches = OrderedDict()   # batch size -> InferenceSession
        self._batches_lock = threading.Lock()
        started = time.perf_counter()
        # with plan="auto" on several devices: what was predicted and measured
        self.partition_report = None
        self._grouping, self._memory = contexts, memory
        self.plan = self._make_plan(plan)
        self._executor = Executor(self.model, self.plan, self.devices, contexts, memory)
        log.debug("session for %r ready in %.2f s; plan:\n%s", self.model.name,
                  time.perf_counter() - started, self.plan.table(self.model))

    def _make_plan(self, plan):
        if isinstance(plan, str) and plan == "auto":
            plan, self.partition_report = auto_plan(self.model, self.devices, self._grouping, self._memory)
            return plan
        if isinstance(plan, (str, os.PathLike)):
            if not Path(plan).is_file():
                raise PlanError(f"plan must be 'auto', a list of shares, a clnn.Plan or a plan file; "
                                f"{plan!r} is none of these")
            plan = Plan.load(plan)
        if isinstance(plan, Plan):
            plan.check(self.model, self.devices)
            return plan
        if isinstance(plan, (list, tuple)) and all(isinstance(s, (int, float)) for s in plan):
            return Plan.static(self.model, self.devices, plan)
        raise PlanError(f"plan must be 'auto', a list of shares, a clnn.Plan or a plan file, not {plan!r}")

    def get_inputs(self):
        return [self._described(info) for info in self.model.inputs]

    def get_outputs(self):
        return [self._described(info) for info in self.model.outputs]

    def _described(self, info):
        """``info`` with its symbolic batch named, as onnxruntime shows it."""
        if self._source is None or info.name not in self.model.symbolic_batch:
            return info
        return TensorInfo(info.name, [self.model.symbolic_batch[info.name], *info.shape[1:]], info.type)

    def get_providers(self):
        return [d.id for d in self.devices]

    def run(self, output_names, input_feed, run_options=None, trace=None):
        """Outputs (numpy arrays) named by ``output_names`` (None: all), for
        the inputs in ``input_feed`` ({name: float32 array}). ``trace``: a
        path to write the run's Chrome trace to (chrome://tracing, Perfetto)."""
        other = self._session_for_batch(input_feed)
        if other is not None:
            return other.run(output_names, input_feed, run_options, trace)
        feeds = check_feeds(self.model, input_feed)
        wanted = self._output_indices(output_names)
        outputs = self._executor.run(feeds)
        if trace is not None:
            write_trace(trace, self._executor.timeline(), self._executor.last_host_spans)
        return [outputs[i] for i in wanted]

    def _session_for_batch(self, feeds):
        """The session for the feeds' batch size where it differs from this
        one's and the model's batch is symbolic; None to run here (where
        check_feeds reports any other mismatch)."""
        if self._source is None or not isinstance(feeds, dict):
            return None
        batches, current = {}, None
        for info in self.model.inputs:
            value = feeds.get(info.name)
            if info.name not in self.model.symbolic_batch or not isinstance(value, np.ndarray):
                continue
            if value.ndim != len(info.shape) or value.shape[1:] != tuple(info.shape[1:]) or not value.shape[0]:
                raise InputError(f"input {info.name!r} has shape {list(value.shape)}; expected "
                                 f"{self._described(info).shape}")
            batches[info.name], current = value.shape[0], info.shape[0]
        if len(set(batches.values())) > 1:
            raise InputError(f"the inputs' batch sizes differ ({batches}); they share one batch dimension")
        if not batches or current in batches.values():
            return None
        (wanted,) = set(batches.values())
        with self._batches_lock:
            if wanted not in self._other_batches:
                self._other_batches[wanted] = self._at_batch(wanted)
                if len(self._other_batches) > KEPT_BATCH_SIZES:
                    self._other_batches.popitem(last=False)
            self._other_batches.move_to_end(wanted)
            return self._other_batches[wanted]

    def _at_batch(self, batch):
        plans_any_batch = isinstance(self._plan_argument, (list, tuple)) or self._plan_argument == "auto"
        if not plans_any_batch:
            raise PlanError(f"this session's plan was made for batch {self.model.inputs[0].shape[0]}; a feed "
                            f"of batch {batch} needs plan='auto' or a list of shares, which plan any batch")
        log.debug("building %r for batch %d", self.model.name, batch)
        return InferenceSession(load(self._source, batch=batch), self.devices, self._plan_argument,
                                self._grouping, self._memory)

    def layer_times(self):
        """{layer: {device id: seconds}} of kernel time in the last run."""
        return layer_times(self._executor.timeline())

    def _output_indices(self, output_names):
        names = self.model.output_names
        if output_names is None:
            return list(range(len(names)))
        if isinstance(output_names, str):
            raise InputError(f"output_names must be a list of names or None, not the string {output_names!r}")
        unknown = [n for n in output_names if n not in names]
        if unknown:
            raise InputError(f"unknown output {unknown[0]!r}; the model's outputs are {names}")
        return [names.index(n) for n in output_names]

