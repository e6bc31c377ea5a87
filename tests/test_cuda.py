"""The CUDA backend on an NVIDIA GPU (tox -e cuda): the device and its
de-duplication against NVIDIA's OpenCL, a run in mapped host memory, a run
shared with PoCL's CPU, user events (the bridge's) holding and failing
their dependents, GPU slices (cuda:sms=N, green contexts) and runs replayed
as CUDA graphs. Skipped where there is no CUDA device; the generic suites
cover the rest through the ``device`` fixture."""

import threading
import time

import numpy as np
import pytest

import clnn
from clnn.cache_files import device_key
from clnn.executor import Executor
from clnn.plan import Plan
from clnn.runtime import backends, contexts_for
from clnn.schedule import Schedule
from clnn.sources import signature
from clnn.timing import kernel_span, timeline_samples

from helpers import rand, rel_err

TOL = 1e-4


def _cuda_devices():
    backend = backends().get("cuda")
    if backend is None:
        return [], "the cuda backend is not registered (clnn's entry points are missing)"
    return backend.devices(), backend.unavailable


CUDA, WHY = _cuda_devices()
pytestmark = pytest.mark.skipif(not CUDA, reason=f"no CUDA device: {WHY}")


@pytest.fixture(scope="module")
def gpu():
    return CUDA[0]


def test_the_gpu_is_a_cuda_device(gpu):
    assert gpu in clnn.devices()
    assert (gpu.backend, gpu.kind, gpu.platform) == ("cuda", "gpu", "CUDA")
    assert gpu.id == f"cuda:cuda:{gpu.handle.ordinal}"
    assert gpu.identity.startswith("pci:")
    assert clnn.devices("cuda") == CUDA


def test_a_gpu_that_opencl_shows_too_is_used_once(gpu):
    if not [d for d in clnn.devices() if d.backend == "opencl" and d.identity == gpu.identity]:
        pytest.skip("no OpenCL driver shows this GPU")
    kept = [d for d in clnn.select("all") if d.identity == gpu.identity]
    assert len(kept) == 1 and kept[0].backend == "opencl"


def _feeds(model, rng):
    return {i.name: rand(rng, i.shape) for i in model.inputs}


@pytest.mark.parametrize("name", ["lenet5", "squeezenet"])
def test_unified_memory_runs_in_mapped_host_memory(gpu, name, rng):
    """memory="unified" on any GPU: kernels work on the pinned, mapped
    tensors themselves and nothing is copied."""
    model = clnn.models.get(name)
    feeds = _feeds(model, rng)
    executor = Executor(model, Plan.single(model, gpu), [gpu], memory="unified")
    assert [c.unified for c in executor.contexts] == [True]
    executor.poison()
    (actual,) = executor.run(feeds)
    assert {c.kind for c in executor.schedule.commands} == {"kernel"}
    assert rel_err(actual, model.reference(feeds)[0]) < TOL


def test_a_run_split_with_pocl_equals_the_gpu_alone(gpu, rng):
    try:
        cpu = clnn.select("portable")[0]
    except clnn.DeviceError:
        pytest.skip("no PoCL device")
    model = clnn.models.get("squeezenet", batch=2)
    feeds = _feeds(model, rng)
    (alone,) = Executor(model, Plan.single(model, gpu), [gpu]).run(feeds)
    executor = Executor(model, Plan.static(model, [cpu, gpu], [0.5, 0.5]), [cpu, gpu])
    executor.poison()
    started = time.perf_counter_ns()
    (split,) = executor.run(feeds)
    finished = time.perf_counter_ns()
    assert rel_err(split, alone) < TOL
    assert rel_err(split, model.reference(feeds)[0]) < TOL
    slack = 1_000_000  # 1 ms for the calibration of the GPU's clock
    for entry in executor.timeline():
        if entry["device"] == gpu.id:
            assert started - slack <= entry["start"] <= entry["end"] <= finished + slack, entry


def _doubling(context, count):
    """y = x + x over ``count`` floats of two new buffers, bound."""
    x, y = context.alloc(count * 4), context.alloc(count * 4)
    args = signature("clnn_eltwise_box").flat(
        {"out": y, "a": x, "b": x, "op": 1, "bmode": 0, "act": 0, "alpha": 0.0, "beta": 0.0, "H": 1, "W": count,
         "n0": 0, "c0": 0, "h0": 0, "bc": 1, "bh": 1, "count": count},
        tensor=lambda buffer: [buffer, np.int32(0), np.int32(count)])
    return context.bind("eltwise", "clnn_eltwise_box", (), args)


def test_a_user_event_holds_its_dependents_until_settled(gpu):
    (context,) = contexts_for([gpu])
    bound = _doubling(context, 1000)
    user, settle = context.user_event()
    settled = []

    def settle_later():
        settled.append(time.perf_counter_ns())
        settle(True)

    threading.Timer(0.2, settle_later).start()
    # where the stream cannot wait on memory, this blocks until the timer fires
    event = context.launch(context.queue(gpu), bound, (1000,), None, [user])
    event.wait()
    start, end = context.event_times(event)
    assert settled[0] - 1_000_000 <= start <= end <= time.perf_counter_ns()


class _FailingContext:
    """Another context, whose one command fails."""

    devices = ()

    def queue(self, device):
        return self

    def flush(self, device):
        pass

    def wait(self, event):
        event.wait()


class _FailedEvent:
    def wait(self):
        raise clnn.DeviceError("the command this depends on failed")


def test_a_failed_dependency_in_another_context_fails_the_run(gpu, rng):
    (context,) = contexts_for([gpu])
    bound = _doubling(context, 1000)
    schedule = Schedule()
    source = schedule.add(_FailingContext(), gpu, lambda wait_for: _FailedEvent(), (), "kernel", "source")
    schedule.add(context, gpu, lambda wait_for: context.launch(context.queue(gpu), bound, (1000,), None, wait_for),
                 [source], "kernel", "dependent")
    with pytest.raises(clnn.DeviceError):  # enqueueing it, or waiting for it, as Executor.run does
        schedule.run([None] * len(schedule.commands))
        context.finish(gpu)
    # the failure stays with that run
    model = clnn.models.get("lenet5")
    feeds = _feeds(model, rng)
    (actual,) = Executor(model, Plan.single(model, gpu), [gpu]).run(feeds)
    assert rel_err(actual, model.reference(feeds)[0]) < TOL


# GPU slices (green contexts) ----------------------------------------------------------

def _slice(count):
    try:
        return clnn.select(f"cuda:sms={count}")[0]
    except clnn.DeviceError as exc:
        pytest.skip(f"no GPU slices here: {exc}")


def test_a_slice_is_a_device_with_the_sms_granted(gpu):
    piece = _slice(8)
    assert piece.backend == "cuda" and piece.kind == "gpu" and piece.identity == gpu.identity
    assert 8 <= piece.compute_units < gpu.compute_units
    assert piece.id == f"cuda:cuda-sms{piece.compute_units}:{gpu.handle.ordinal}"
    assert clnn.select(piece.id) == [piece] and clnn.select(f"{gpu.id}:sms=8") == [piece]
    assert device_key(piece) != device_key(gpu)
    try:
        (cpu,) = clnn.select("portable")
    except (clnn.DeviceError, ValueError):
        return
    assert clnn.select("portable;cuda:sms=16") == [cpu, _slice(16)]


@pytest.mark.parametrize("memory", ["discrete", "unified"])
def test_a_slice_computes_what_the_whole_gpu_does(gpu, memory, rng):
    piece = _slice(16)
    model = clnn.models.get("squeezenet", batch=2)
    feeds = _feeds(model, rng)
    (whole,) = Executor(model, Plan.single(model, gpu), [gpu], memory=memory).run(feeds)
    executor = Executor(model, Plan.single(model, piece), [piece], memory=memory)
    executor.poison()
    (sliced,) = executor.run(feeds)
    assert rel_err(sliced, whole) < TOL and rel_err(sliced, model.reference(feeds)[0]) < TOL


def test_two_slices_and_the_whole_gpu_run_at_once(gpu, rng):
    """Three contexts of one GPU in one process, run from three threads."""
    devices = [_slice(8), _slice(32), gpu]
    assert len({d.id for d in devices}) == 3
    model = clnn.models.get("resnet18", batch=2)
    feeds = _feeds(model, rng)
    expected = model.reference(feeds)[0]
    sessions = [clnn.InferenceSession(model, devices=[d], plan=[1.0]) for d in devices]
    results, errors = {}, []

    def work(session):
        try:
            for _ in range(5):
                results[session.devices[0].id] = session.run(None, feeds)[0]
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(rel_err(results[d.id], expected) < TOL for d in devices)


def test_a_slice_is_slower_than_the_whole_gpu(gpu, rng):
    """The green context does bound the SMs: convolutions on 8 SMs of a GPU
    with many more take several times longer (16x at best on 132)."""
    piece = _slice(8)
    if gpu.compute_units < 4 * piece.compute_units:
        pytest.skip(f"{gpu} has {gpu.compute_units} SMs: too few beside a slice of {piece.compute_units}")
    model = clnn.models.get("vgg16", batch=8)  # enough work for the whole GPU
    feeds = _feeds(model, rng)
    spans = {}
    for device in (gpu, piece):
        executor = Executor(model, Plan.single(model, device), [device])
        spans[device.id] = min(timeline_samples(executor, feeds, 3, kernel_span))
    assert spans[piece.id] > 3 * spans[gpu.id], spans


def test_a_run_split_with_pocl_equals_the_slice_alone(rng):
    piece = _slice(16)
    try:
        cpu = clnn.select("portable")[0]
    except clnn.DeviceError:
        pytest.skip("no PoCL device")
    model = clnn.models.get("resnet18", batch=2)
    feeds = _feeds(model, rng)
    (alone,) = Executor(model, Plan.single(model, piece), [piece]).run(feeds)
    executor = Executor(model, Plan.static(model, [cpu, piece], [0.5, 0.5]), [cpu, piece])
    executor.poison()
    for _ in range(3):
        (split,) = executor.run(feeds)
        assert rel_err(split, alone) < TOL


# runs replayed as CUDA graphs ---------------------------------------------------------

@pytest.mark.parametrize("which", ["whole", "slice"])
@pytest.mark.parametrize("memory", ["discrete", "unified"])
def test_a_run_on_one_gpu_is_replayed_as_a_graph(gpu, which, memory, rng):
    device = gpu if which == "whole" else _slice(16)
    model = clnn.models.get("squeezenet")
    cases = [(feeds, model.reference(feeds)[0]) for feeds in (_feeds(model, rng), _feeds(model, rng))]
    executor = Executor(model, Plan.single(model, device), [device], memory=memory)
    executor.poison()
    for timed in (True, False, True):
        executor.timed = timed
        for feeds, expected in cases:  # new inputs each run: the graph reads them where they are
            started = time.perf_counter_ns()
            (actual,) = executor.run(feeds)
            finished = time.perf_counter_ns()
            assert rel_err(actual, expected) < TOL
        if timed:
            timeline = executor.timeline()
            assert len(timeline) == len(executor.schedule.commands)
            for entry in timeline:
                assert started - 1_000_000 <= entry["start"] <= entry["end"] <= finished + 1_000_000, entry
            kernels = [e for e in timeline if e["kind"] == "kernel"]
            assert all(a["end"] <= b["start"] + 1000 for a, b in zip(kernels, kernels[1:]))  # in stream order
        else:
            with pytest.raises(clnn.DeviceError, match="without per-command events"):
                executor.timeline()
    recordings = executor.schedule._recordings
    assert recordings[True] is not None and recordings[False] is not None  # both were graphs


def test_graphs_can_be_turned_off(gpu, monkeypatch, rng):
    monkeypatch.setenv("CLNN_CUDA_GRAPHS", "0")
    model = clnn.models.get("lenet5")
    executor = Executor(model, Plan.single(model, gpu), [gpu])
    feeds = _feeds(model, rng)
    (actual,) = executor.run(feeds)
    assert executor.schedule._recordings == {True: None}
    assert rel_err(actual, model.reference(feeds)[0]) < TOL
