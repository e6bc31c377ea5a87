"""clnn on a Ray cluster (the ``ray`` extra): batch inference with Ray Data
and a model served by Ray Serve.

``Predictor`` is a callable class for ``Dataset.map_batches``, and
``deployment`` returns a Ray Serve application; both build one
clnn.InferenceSession per Ray actor and use only clnn's public API.

Each session runs one fixed batch size: rows come in chunks of it, and the
last chunk is padded with zeros whose outputs are dropped. Ray hands out
batches of varying size (the end of every block, however many requests have
queued), and a session whose model has a symbolic batch would import the
model again for each new size, calibrate it with plan="auto" and keep only
the last few; padding costs at most one partial chunk per batch instead.

Sessions are built one at a time on each node (a file lock in clnn's cache
directory), so that with plan="auto" the first actor calibrates the node's
devices and writes the calibration cache, and the others read it rather than
all measuring at once and disturbing one another's timings.
"""

import asyncio
import fcntl
from contextlib import contextmanager
from pathlib import Path

import numpy as np

try:
    import ray  # noqa: F401 (fail on import, naming the extra, not later inside an actor)
except ImportError as exc:
    raise ImportError('clnn.ray needs Ray: pip install "clnn[ray]"') from exc

from . import models
from .errors import InputError, ModelError
from .graph import Graph
from .onnx_import import load
from .cache_files import cache_dir
from .session import InferenceSession

# rows per session run when the model leaves the batch free (a zoo name or an
# ONNX model with a symbolic batch): large for throughput, small for latency
DATA_BATCH = 32
SERVE_BATCH = 8


@contextmanager
def _one_build_per_node():
    """Hold the node's lock for building a session (see the module's doc)."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / "ray-session.lock", "w")
    except OSError:  # an unwritable cache: sessions calibrate side by side, each keeping its own
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _model_at(model, batch_size, default_batch, seed):
    """A clnn.Model from a clnn.Model, a zoo name, or an ONNX path or bytes,
    at ``batch_size`` (``default_batch`` when None) where its batch is free."""
    wanted = batch_size or default_batch
    if isinstance(model, Graph):
        loaded = model
    elif isinstance(model, str) and not model.endswith(".onnx") and not Path(model).exists():
        loaded = models.get(model, batch=wanted, seed=seed)
    else:
        loaded = load(model, batch=wanted)
    fixed = loaded.inputs[0].shape[0]
    if batch_size is not None and fixed != batch_size:
        raise ModelError(f"model {loaded.name!r} has a fixed batch of {fixed}; batch_size={batch_size} needs an "
                         f"ONNX model with a symbolic batch (or leave batch_size=None to run {fixed} rows at a time)")
    return loaded


class _Runner:
    """One session at a fixed batch size, running any number of rows."""

    def __init__(self, model, batch_size, default_batch, devices, plan, seed):
        model = _model_at(model, batch_size, default_batch, seed)
        with _one_build_per_node():
            self.session = InferenceSession(model, devices=devices, plan=plan)
        self.inputs = {i.name: tuple(i.shape) for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.batch = next(iter(self.inputs.values()))[0]

    def rows(self, name, value, what):
        """``value`` for model input ``name`` as float32 rows, or InputError
        naming ``what`` (where it came from). Numpy arrays must be float32, as
        for session.run; lists (from JSON) are converted."""
        sample = self.inputs[name][1:]
        if isinstance(value, np.ndarray):
            if value.dtype != np.float32:
                raise InputError(f"{what} has dtype {value.dtype}; model input {name!r} expects float32")
        else:
            try:
                value = np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{what} is not an array of numbers ({exc})") from None
        if value.ndim != len(sample) + 1 or value.shape[1:] != sample or not len(value):
            raise InputError(f"{what} has shape {list(value.shape)}; model input {name!r} expects rows of "
                             f"shape {list(sample)}, so [rows, {', '.join(map(str, sample))}] with rows >= 1")
        return value

    def run(self, feeds):
        """{output name: array} for ``feeds`` ({input name: float32 rows}, as
        many for every input), in chunks of the session's batch, the last one
        padded."""
        total = len(next(iter(feeds.values())))
        pieces = {name: [] for name in self.outputs}
        for start in range(0, total, self.batch):
            rows = min(self.batch, total - start)
            chunk = {k: _padded(v[start:start + rows], self.batch) for k, v in feeds.items()}
            for name, out in zip(self.outputs, self.session.run(None, chunk)):
                pieces[name].append(out[:rows])
        return {name: np.concatenate(p) for name, p in pieces.items()}


def _padded(rows, batch):
    if len(rows) == batch:
        return rows
    return np.concatenate([rows, np.zeros((batch - len(rows),) + rows.shape[1:], np.float32)])


def _columns_of(names, given, what):
    """{model tensor name: column} from ``given``: None (the tensor names), a
    column name (one tensor) or a list of them (in the model's order)."""
    if given is None:
        return {n: n for n in names}
    columns = [given] if isinstance(given, str) else list(given)
    if len(columns) != len(names):
        raise ModelError(f"the model has {len(names)} {what} {names}; {len(columns)} column names were given "
                         f"({columns})")
    return dict(zip(names, columns))


class Predictor:
    """clnn inference for ``ray.data.Dataset.map_batches``, one session per
    actor::

        ds.map_batches(clnn.ray.Predictor, fn_constructor_kwargs=dict(
                           model="resnet18", input_column="image", output_columns="logits"),
                       batch_size=32, compute=ray.data.ActorPoolStrategy(size=2))

    ``model``: a zoo name, an ONNX file path (on every node) or its bytes, or
    a clnn.Model. ``input_column``: the column holding the model's input
    (float32 rows of the input's shape without the batch), or a list of
    columns, one per model input in order; None: columns named as the
    inputs. ``output_columns``: the same for the outputs. The outputs are
    added to the batch, whose input columns are dropped unless
    ``keep_input``. ``batch_size``: rows per session run, best equal to
    map_batches' (default 32 where the model leaves the batch free; a model
    with a fixed batch runs that many). ``devices`` and ``plan``: as for
    clnn.InferenceSession, on each node; ``seed``: a zoo model's weights.
    A missing column, or one of the wrong dtype or shape, raises
    clnn.InputError. Batches must be numpy (map_batches' default format).
    """

    def __init__(self, model, input_column="input", output_columns=None, *, batch_size=None, devices=None,
                 plan="auto", seed=0, keep_input=False):
        self._runner = _Runner(model, batch_size, DATA_BATCH, devices, plan, seed)
        self._inputs = _columns_of(list(self._runner.inputs), input_column, "inputs")
        self._outputs = _columns_of(self._runner.outputs, output_columns, "outputs")
        self._keep_input = keep_input

    def __call__(self, batch):
        if not isinstance(batch, dict):
            raise InputError(f"clnn.ray.Predictor takes numpy batches (a dict of column to array), not "
                             f"{type(batch).__name__}: leave map_batches' batch_format as 'numpy'")
        feeds = {}
        for name, column in self._inputs.items():
            if column not in batch:
                raise InputError(f"column {column!r} (model input {name!r}) is missing; the batch has "
                                 f"{sorted(batch)}")
            feeds[name] = self._runner.rows(name, batch[column], f"column {column!r}")
        dropped = set() if self._keep_input else set(self._inputs.values())
        result = {k: v for k, v in batch.items() if k not in dropped}
        for name, column in self._outputs.items():
            if column in result:
                raise InputError(f"output column {column!r} (model output {name!r}) is already a column of the "
                                 f"batch: name it otherwise with output_columns")
        outputs = self._runner.run(feeds)
        result.update({column: outputs[name] for name, column in self._outputs.items()})
        return result


class Server:
    """The Ray Serve deployment that ``deployment`` binds; see there."""

    def __init__(self, model, batch_size, devices, plan, seed, max_batch_size, batch_wait_timeout_s):
        from ray import serve
        self._runner = _Runner(model, batch_size, SERVE_BATCH, devices, plan, seed)
        # decorated here, not in the class body, so that importing clnn.ray
        # needs only Ray core; each replica gets its own queue
        batched = serve.batch(max_batch_size=max_batch_size or self._runner.batch,
                              batch_wait_timeout_s=batch_wait_timeout_s)
        self._run_batched = batched(self._run_requests)

    async def __call__(self, request):
        """A dict of numpy arrays (a handle's call) answered with one, or an
        HTTP request whose JSON body maps input names to nested lists,
        answered with a JSON object of nested lists (400 for a bad request)."""
        if isinstance(request, dict):
            return await self._run_batched(self._feeds(request))
        from starlette.responses import JSONResponse
        try:
            feeds = self._feeds(await request.json())
        except (InputError, ValueError) as exc:  # JSONDecodeError is a ValueError
            return JSONResponse({"error": str(exc)}, status_code=400)
        outputs = await self._run_batched(feeds)
        return JSONResponse({k: v.tolist() for k, v in outputs.items()})

    def _feeds(self, request):
        """Checked here, per request, so that a bad one fails alone rather
        than the batch it would have joined."""
        if not isinstance(request, dict):
            raise InputError(f"a request is an object of input name to rows, not {type(request).__name__}")
        unknown = sorted(set(request) - set(self._runner.inputs))
        if unknown:
            raise InputError(f"unknown input {unknown[0]!r}; the model's inputs are {list(self._runner.inputs)}")
        feeds = {}
        for name in self._runner.inputs:
            if name not in request:
                raise InputError(f"the request lacks input {name!r}")
            feeds[name] = self._runner.rows(name, request[name], f"input {name!r}")
        if len({len(v) for v in feeds.values()}) > 1:
            raise InputError(f"the inputs' row counts differ ({ {k: len(v) for k, v in feeds.items()} })")
        return feeds

    async def _run_requests(self, requests):
        """One session run (or several chunks) for the queued requests; in a
        thread, so that the replica keeps queueing requests meanwhile."""
        counts = [len(next(iter(r.values()))) for r in requests]
        joined = {name: np.concatenate([r[name] for r in requests]) for name in self._runner.inputs}
        outputs = await asyncio.to_thread(self._runner.run, joined)
        ends = np.cumsum(counts)
        return [{name: out[end - count:end] for name, out in outputs.items()} for count, end in zip(counts, ends)]


def deployment(model, *, batch_size=None, devices=None, plan="auto", seed=0, max_batch_size=None,
               batch_wait_timeout_s=0.01, name="clnn", num_replicas=1, ray_actor_options=None):
    """A Ray Serve application serving ``model``: ``serve.run(app)``.

    Each replica holds one session (arguments as for Predictor; batch_size
    defaults to 8 where the model leaves the batch free). Requests queue for
    up to ``batch_wait_timeout_s`` or ``max_batch_size`` requests (default:
    the session's batch) and run together.

    A request maps every model input name to its rows, shape [rows, *the
    input's shape without the batch*], rows >= 1: over HTTP a JSON object of
    nested lists (POST, ``{"input": [[[[0.0, ...]]]]}``), answered with a JSON
    object mapping every output name to nested lists of as many rows (a bad
    request gets status 400 and ``{"error": "..."}``); through a
    DeploymentHandle a dict of float32 numpy arrays, answered with a dict of
    numpy arrays (a bad request raises clnn.InputError).
    """
    from ray import serve
    options = {"name": name, "num_replicas": num_replicas}
    if ray_actor_options is not None:
        options["ray_actor_options"] = ray_actor_options
    return serve.deployment(Server).options(**options).bind(model, batch_size, devices, plan, seed, max_batch_size,
                                                            batch_wait_timeout_s)
