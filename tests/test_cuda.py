"""The CUDA backend on an NVIDIA GPU (tox -e cuda): the device and its
de-duplication against NVIDIA's OpenCL, a run in mapped host memory, a run
shared with PoCL's CPU, and user events (the bridge's) holding and failing
their dependents. Skipped where there is no CUDA device; the generic suites
cover the rest through the ``device`` fixture."""

import threading
import time

import numpy as np
import pytest

import clnn
from clnn.executor import Executor
from clnn.plan import Plan
from clnn.runtime import backends, contexts_for
from clnn.schedule import Schedule
from clnn.sources import signature

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
    source = schedule.add(_FailingContext(), None, lambda wait_for: _FailedEvent(), (), "kernel", "source")
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
