"""InferenceSession: onnxruntime's API over clnn's executor."""

import logging
import os
import time
from pathlib import Path

from .errors import InputError, PlanError
from .executor import Executor, check_feeds
from .graph import Model
from .plan import Plan
from .runtime import select
from .trace import layer_times, write_trace

log = logging.getLogger("clnn")


def _as_model(model):
    if isinstance(model, Model):
        return model
    from .onnx_import import load
    return load(model, batch=1)


class InferenceSession:
    """Runs a model on the selected devices under a plan.

    ``model``: a clnn.Model, an ONNX file path, its bytes or an
    onnx.ModelProto. ``devices``: a selector (see clnn.devices) or a list of
    devices. ``plan``: "auto", a list of shares (one per device) applied to
    every layer that can be split, a clnn.Plan, or the path of a saved plan.
    ``layout`` and ``memory`` override CLNN_CONTEXTS and CLNN_MEMORY.
    """

    def __init__(self, model, devices=None, plan="auto", layout=None, memory=None):
        self.model = _as_model(model)
        self.devices = select(devices)
        started = time.perf_counter()
        # with plan="auto" on several devices: what was predicted and measured
        self.partition_report = None
        self._layout, self._memory = layout, memory
        self.plan = self._make_plan(plan)
        self._executor = Executor(self.model, self.plan, self.devices, layout=layout, memory=memory)
        log.debug("session for %r ready in %.2f s; plan:\n%s", self.model.name,
                  time.perf_counter() - started, self.plan.table(self.model))

    def _make_plan(self, plan):
        if isinstance(plan, str) and plan == "auto":
            from .partition import auto_plan
            plan, self.partition_report = auto_plan(self.model, self.devices, self._layout, self._memory)
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
        return self.model.inputs

    def get_outputs(self):
        return self.model.outputs

    def get_providers(self):
        return [d.id for d in self.devices]

    def run(self, output_names, input_feed, run_options=None, trace=None):
        """Outputs (numpy arrays) named by ``output_names`` (None: all), for
        the inputs in ``input_feed`` ({name: float32 array}). ``trace``: a
        path to write the run's Chrome trace to (chrome://tracing, Perfetto)."""
        feeds = check_feeds(self.model, input_feed)
        wanted = self._output_indices(output_names)
        outputs = self._executor.run(feeds)
        if trace is not None:
            write_trace(trace, self._executor.timeline(), self._executor.last_host_spans)
        return [outputs[i] for i in wanted]

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

