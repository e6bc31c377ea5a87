"""onnxruntime's session objects, as far as they apply to clnn: options,
run options, model metadata, providers.

A script written for onnxruntime runs with clnn after changing its import.
What clnn has no use for is accepted and ignored (each field says), never a
TypeError; what clnn cannot do (IOBinding, OrtValue, custom op libraries)
raises a ClnnError that says so.
"""

import enum
from dataclasses import dataclass, field

from .errors import ClnnError
from .runtime import all_devices

# onnxruntime's provider names -> the clnn devices they mean
PROVIDERS = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda"}


class GraphOptimizationLevel(enum.IntEnum):
    """ORT_DISABLE_ALL builds the model without clnn's fusion passes; the
    other levels all fuse (clnn has one set of passes)."""
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """Accepted and ignored: clnn runs independent layers at once where its
    plan puts them on different devices, whatever the mode."""
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class SessionOptions:
    """onnxruntime.SessionOptions. Used by clnn:

    - ``enable_profiling``: every run's kernels and copies are recorded, and
      ``InferenceSession.end_profiling()`` writes them as a Chrome trace
      named ``<profile_file_prefix>_<date>_<time>.json``;
    - ``log_severity_level``: 0 (verbose) and 1 (info) print clnn's debug log
      (placement, memory paths) for the whole process; 2-4 leave it quiet;
    - ``graph_optimization_level``: ORT_DISABLE_ALL skips clnn's fusion passes;
    - ``add_free_dimension_override_by_name``: a model whose batch dimension
      has that name is built at that batch size (clnn's only symbolic
      dimension is the batch).

    Accepted and ignored: ``intra_op_num_threads`` and
    ``inter_op_num_threads`` (each device's driver runs its own threads: set
    PoCL's with POCL_MAX_PTHREAD_COUNT), ``execution_mode``,
    ``enable_cpu_mem_arena``, ``enable_mem_pattern``, ``enable_mem_reuse``
    (clnn allocates every tensor once per session),
    ``optimized_model_filepath``, ``use_deterministic_compute`` (clnn's
    kernels are deterministic), ``log_verbosity_level``, ``logid`` and the
    session config entries.
    """

    def __init__(self):
        self.enable_profiling = False
        self.profile_file_prefix = "clnn_profile"
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self.execution_mode = ExecutionMode.ORT_SEQUENTIAL
        self.intra_op_num_threads = 0
        self.inter_op_num_threads = 0
        self.enable_cpu_mem_arena = True
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.optimized_model_filepath = ""
        self.use_deterministic_compute = False
        self.free_dimensions = {}
        self._config = {}

    def add_free_dimension_override_by_name(self, name, value):
        self.free_dimensions[str(name)] = int(value)

    def add_session_config_entry(self, key, value):
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key):
        return self._config[key]

    def register_custom_ops_library(self, path):
        raise ClnnError("custom op libraries are onnxruntime's; clnn runs the ops it implements (README, Models)")


class RunOptions:
    """onnxruntime.RunOptions: accepted and ignored (``log_severity_level``,
    ``log_verbosity_level``, ``logid``, ``only_execute_path_to_fetches``,
    run config entries, and ``terminate``: a clnn run cannot be cancelled
    once enqueued; Ctrl-C surfaces once it has finished)."""

    def __init__(self):
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.terminate = False
        self.only_execute_path_to_fetches = False
        self._config = {}

    def add_run_config_entry(self, key, value):
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key):
        return self._config[key]


@dataclass(frozen=True)
class ModelMetadata:
    """onnxruntime.ModelMetadata: what the ONNX file says about itself."""
    producer_name: str = ""
    graph_name: str = ""
    domain: str = ""
    description: str = ""
    graph_description: str = ""
    version: int = 0
    custom_metadata_map: dict = field(default_factory=dict)


def get_available_providers():
    """The onnxruntime provider names clnn can serve on this machine."""
    found = all_devices()
    names = []
    if any(d.kind == "cpu" and not d.simulator for d in found):
        names.append("CPUExecutionProvider")
    if any(d.backend == "cuda" for d in found):
        names.append("CUDAExecutionProvider")
    return names


def provider_selector(providers, provider_options=None):
    """(a clnn device selector, {provider name: options}) for onnxruntime's
    ``providers`` (names or (name, options) pairs) and ``provider_options``.
    onnxruntime's names mean the CPU devices and the CUDA backend
    (CUDAExecutionProvider's ``device_id`` picks one GPU); any other name is
    a clnn selector (``nvidia``, ``portable:pthread``, ``gpu``)."""
    if isinstance(providers, str):
        providers = [providers]
    names, options = [], {}
    for index, provider in enumerate(providers):
        name, given = (provider if isinstance(provider, tuple) else (provider, None))
        if provider_options is not None and index < len(provider_options):
            given = provider_options[index]
        if not isinstance(name, str):
            raise ClnnError(f"a provider is a name or (name, options), not {provider!r}")
        names.append(name)
        options[name] = dict(given or {})
    if provider_options is not None and len(provider_options) != len(names):
        raise ClnnError(f"provider_options has {len(provider_options)} entries for {len(names)} providers")
    selectors = []
    for name in names:
        selector = PROVIDERS.get(name, name)
        if name == "CUDAExecutionProvider" and "device_id" in options[name]:
            selector = f"cuda:cuda:{int(options[name]['device_id'])}"
        selectors.append(selector)
    return ";".join(selectors), options


def provider_names(devices):
    """onnxruntime's names for the devices in use where it has one, else
    the devices' ids, in order."""
    found = []
    for d in devices:
        name = ("CUDAExecutionProvider" if d.backend == "cuda" else
                "CPUExecutionProvider" if d.kind == "cpu" else d.id)
        if name not in found:
            found.append(name)
    return found
