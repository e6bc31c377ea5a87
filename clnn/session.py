"""InferenceSession: onnxruntime's API over clnn's executor."""

import logging
import os
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .errors import ClnnError, DeviceError, InputError, PlanError
from .executor import Executor, check_feeds
from .graph import Graph, TensorInfo
from .log import show as show_log
from .onnx_import import load
from .partition import auto_plan
from .plan import Plan
from .runtime import select
from .session_options import (GraphOptimizationLevel, ModelMetadata, SessionOptions, provider_names,
                              provider_selector)
from .timing import layer_times
from .trace import write_trace

log = logging.getLogger("clnn")

# batch sizes other than the first that a session with a symbolic batch keeps
# ready (each holds its own tensors); the least recently fed is dropped
KEPT_BATCH_SIZES = 4
ON_DEVICE_FAILURE = ("fallback", "raise")
UNSUPPORTED = ("IOBinding and OrtValue are onnxruntime's ways of keeping data on a device between runs; clnn "
               "takes numpy arrays in run() and returns numpy arrays")


class InferenceSession:
    """Runs a model on the selected devices under a plan, as
    onnxruntime.InferenceSession does.

    ``path_or_bytes``: an ONNX file path, its bytes, an onnx.ModelProto or a
    clnn.Model. ``sess_options``: a clnn.SessionOptions. ``providers``:
    onnxruntime's names (CPUExecutionProvider: the CPU devices;
    CUDAExecutionProvider: the CUDA backend) or clnn device selectors, with
    ``provider_options`` as in onnxruntime.

    clnn's own keywords: ``devices`` (a selector or a list of devices; the
    default is CLNN_DEVICES or all, see clnn.devices), ``plan`` ("auto", a
    list of shares, one per device, applied to every layer that can be
    split, a clnn.Plan, or the path of a saved plan), ``contexts``
    ("platform" or "device") and ``memory`` ("auto", "unified", "discrete"),
    which override CLNN_CONTEXTS and CLNN_MEMORY, and ``on_device_failure``:
    when a device fails during a run, that run raises a DeviceError naming
    the device and the layer; with "fallback" (the default) the session then
    runs on the remaining devices, with a warning, and with "raise" it
    refuses to run again.

    An ONNX model whose batch dimension is symbolic runs any batch size, as
    in onnxruntime: it is built at batch 1, and a feed of another batch size
    imports the model again at that size, with the same devices and kind of
    plan, on first use. ``plan``, ``partition_report`` and ``layer_times``
    describe the batch-1 session.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, *,
                 devices=None, plan="auto", contexts=None, memory=None, on_device_failure="fallback"):
        if sess_options is not None and not isinstance(sess_options, SessionOptions):
            raise InputError(f"sess_options must be a clnn.SessionOptions, not {type(sess_options).__name__} "
                             "(clnn's own arguments, such as devices=, are keywords)")
        if on_device_failure not in ON_DEVICE_FAILURE:
            raise InputError(f"on_device_failure must be one of {ON_DEVICE_FAILURE}, not {on_device_failure!r}")
        self._options = sess_options or SessionOptions()
        if self._options.log_severity_level < 2:
            show_log(logging.DEBUG)
        self._provider_options = {}
        if providers is not None:
            if devices is not None:
                raise InputError("give devices= (clnn's selectors) or providers= (onnxruntime's names), not both")
            devices, self._provider_options = provider_selector(providers, provider_options)
        self._fuse = self._options.graph_optimization_level != GraphOptimizationLevel.ORT_DISABLE_ALL
        self.model = path_or_bytes if isinstance(path_or_bytes, Graph) else self._load(path_or_bytes)
        self.devices = select(devices)
        self._source = None if isinstance(path_or_bytes, Graph) or not self.model.symbolic_batch else path_or_bytes
        self._plan_argument = plan
        self._grouping, self._memory = contexts, memory
        self._on_device_failure = on_device_failure
        self._other_batches = OrderedDict()   # batch size -> InferenceSession
        self._batches_lock = threading.Lock()
        self.failures = []                     # DeviceErrors of devices this session stopped using
        self._unannounced = None               # a fallback not yet warned about
        self._profile = [] if self._options.enable_profiling else None  # (timeline, host spans) per run
        started = time.perf_counter()
        # with plan="auto" on several devices: what was predicted and measured
        self.partition_report = None
        self.plan = self._make_plan(plan)
        self._executor = Executor(self.model, self.plan, self.devices, contexts, memory)
        log.debug("session for %r ready in %.2f s; plan:\n%s", self.model.name,
                  time.perf_counter() - started, self.plan.table(self.model))

    def _load(self, source):
        """The model at batch 1, or at the size SessionOptions fixes for its
        symbolic batch dimension."""
        model = load(source, 1, self._fuse)
        names = {name for name in model.symbolic_batch.values() if name}
        fixed = [self._options.free_dimensions[n] for n in names if n in self._options.free_dimensions]
        if not fixed:
            return model
        del model  # its weights go before the model is read again at the fixed size
        return load(source, fixed[0], self._fuse)

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

    # onnxruntime's description of the session --------------------------------------
    def get_inputs(self):
        return [self._described(info) for info in self.model.inputs]

    def get_outputs(self):
        return [self._described(info) for info in self.model.outputs]

    def get_overridable_initializers(self):
        return []

    def _described(self, info):
        """``info`` with its shape a list and its symbolic batch named, as
        onnxruntime shows it."""
        shape = list(info.shape)
        if self._source is not None and info.name in self.model.symbolic_batch:
            shape[0] = self.model.symbolic_batch[info.name]
        return TensorInfo(info.name, shape, info.type)

    def get_providers(self):
        """onnxruntime's names of what this session runs on where it has one
        (CPUExecutionProvider, CUDAExecutionProvider), else device ids."""
        return provider_names(self.devices)

    def get_provider_options(self):
        return {name: dict(options) for name, options in self._provider_options.items()}

    def get_session_options(self):
        return self._options

    def get_modelmeta(self):
        return ModelMetadata(**self.model.metadata)

    def set_providers(self, providers=None, provider_options=None):
        raise ClnnError("clnn chooses devices when a session is made: make a new InferenceSession with these "
                        "providers")

    def io_binding(self):
        raise ClnnError(UNSUPPORTED)

    def run_with_iobinding(self, iobinding, run_options=None):
        raise ClnnError(UNSUPPORTED)

    def run_with_ort_values(self, output_names, input_dict_ort_values, run_options=None):
        raise ClnnError(UNSUPPORTED)

    # running ---------------------------------------------------------------------
    def run(self, output_names, input_feed, run_options=None, trace=None):
        """Outputs (numpy arrays) named by ``output_names`` (None: all), for
        the inputs in ``input_feed`` ({name: float32 array}); ``run_options``
        is accepted (clnn.RunOptions). ``trace``: a path to write the run's
        Chrome trace to (chrome://tracing, Perfetto)."""
        other = self._session_for_batch(input_feed)
        if other is not None:
            return other.run(output_names, input_feed, run_options, trace)
        feeds = check_feeds(self.model, input_feed)
        wanted = self._output_indices(output_names)
        self._announce_fallback()
        try:
            outputs = self._executor.run(feeds)
        except DeviceError as exc:
            if exc.device is not None:
                self._stop_using(exc)
            raise
        timeline = None
        if trace is not None or self._profile is not None:
            timeline = self._executor.timeline(), self._executor.last_host_spans
        if trace is not None:
            write_trace(trace, *timeline)
        if self._profile is not None:
            self._profile.append(timeline)
        return [outputs[i] for i in wanted]

    def end_profiling(self):
        """Write the runs recorded since the session began (with
        SessionOptions.enable_profiling) as one Chrome trace; its path, or ""
        when profiling was off, as onnxruntime returns."""
        if self._profile is None:
            return ""
        runs = self._profile + [r for s in self._other_batches.values() for r in (s._profile or [])]
        path = f"{self._options.profile_file_prefix}_{time.strftime('%Y-%m-%d_%H-%M-%S')}.json"
        write_trace(path, [e for timeline, _ in runs for e in timeline], [s for _, spans in runs for s in spans])
        self._profile = None
        return path

    # a device that fails ---------------------------------------------------------------
    def _stop_using(self, failure):
        """After ``failure`` (a DeviceError naming a device), plan again on the
        remaining devices (a list of shares keeps their proportions; any other plan
        becomes "auto"), or refuse further runs."""
        self.failures.append(failure)
        ids = [d.id for d in self.devices]
        remaining = [d for d in self.devices if d.id != failure.device]
        if self._on_device_failure == "raise" or not remaining:
            why = "no device is left" if not remaining else "on_device_failure='raise'"
            self._executor = _Refusing(f"{failure.device} failed ({failure}); this session runs no more: {why}")
            return
        plan = self._plan_argument
        if isinstance(plan, (list, tuple)):
            kept = [share for i, share in zip(ids, plan) if i != failure.device]
            plan = [share / sum(kept) for share in kept] if sum(kept) > 0 else [1 / len(kept)] * len(kept)
        else:
            plan = "auto"
        self.devices, self._plan_argument, self.partition_report = remaining, plan, None
        self.plan = self._make_plan(plan)
        self._executor = Executor(self.model, self.plan, self.devices, self._grouping, self._memory)
        with self._batches_lock:
            self._other_batches.clear()
        self._unannounced = failure

    def _announce_fallback(self):
        if self._unannounced is not None:
            failure, self._unannounced = self._unannounced, None
            warnings.warn(f"clnn: {failure.device} failed in an earlier run ({failure}); running on "
                          f"{', '.join(d.id for d in self.devices)} from now on (on_device_failure='raise' makes "
                          "this an error)", stacklevel=3)

    # batch sizes -----------------------------------------------------------------
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
        log.debug("building %r for batch %d", self.model.name, batch)
        plan = self._plan_argument
        if isinstance(plan, (str, os.PathLike)) and plan != "auto":
            plan = self.plan  # a plan file: the Plan it held, which fits any batch
        return InferenceSession(load(self._source, batch, self._fuse), self._options, devices=self.devices,
                                plan=plan, contexts=self._grouping, memory=self._memory,
                                on_device_failure=self._on_device_failure)

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


class _Refusing:
    """Stands in for the executor of a session that runs no more."""

    def __init__(self, why):
        self.why = why

    def run(self, feeds):
        raise DeviceError(self.why)

    def timeline(self):
        return []
