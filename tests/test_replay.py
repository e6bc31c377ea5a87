"""Recorded runs replayed in one submission (CUDA graphs), without a GPU:
when a schedule records its run and when it enqueues command by command,
a real model through the replay path (a PoCL context made to replay by
enqueueing again), and the CUDA stream's capture against a stand-in for
the driver."""

import threading
import time

import numpy as np
import pytest

import clnn
from clnn.cuda import events as cuda_events
from clnn.cuda import graph as cuda_graph
from clnn.cuda import stream as cuda_stream
from clnn.executor import Executor
from clnn.plan import Plan
from clnn.schedule import Schedule

from helpers import rand, rel_err


# the schedule's choice ---------------------------------------------------------------

class _Device:
    def __init__(self, id_):
        self.id = id_

    def __str__(self):
        return self.id


class _Recording:
    def __init__(self, timed, fail=None):
        self.timed, self.fail = timed, fail
        self.recorded, self.replays = None, 0

    def record(self, enqueue_all):
        if self.fail == "record":
            raise clnn.DeviceError("cannot capture")
        self.recorded = enqueue_all()

    def replay(self):
        if self.fail == "replay":
            raise clnn.DeviceError("launch failed")
        self.replays += 1
        return [("replayed", e, self.replays) for e in self.recorded]


class _Context:
    """Enqueues by naming the command; records where ``recordable``."""

    def __init__(self, recordable=True, fail=None):
        self.recordable, self.fail = recordable, fail
        self.enqueued, self.recordings, self.devices = [], [], ()

    def recorder(self, device, timed):
        if not self.recordable:
            return None
        self.recordings.append(_Recording(timed, self.fail))
        return self.recordings[-1]

    def queue(self, device):
        return device

    def flush(self, device):
        pass

    def user_event(self):
        return "user", lambda ok=True: None


def _chain(schedule, context, device, count, first=0):
    previous = []
    for index in range(first, first + count):
        def enqueue(wait_for, i=index):
            context.enqueued.append((i, list(wait_for)))
            return f"e{i}"
        previous = [schedule.add(context, device, enqueue, previous, "kernel", f"k{index}")]


def test_a_run_on_one_queue_is_recorded_once_and_replayed():
    context, device = _Context(), _Device("gpu")
    schedule = Schedule()
    _chain(schedule, context, device, 3)
    for run in (1, 2, 3):
        events = [None] * 3
        assert schedule.run(events) is True
        assert events == [("replayed", f"e{i}", run) for i in range(3)]
    # recorded once, in order, each command waiting for its predecessor's event
    assert context.enqueued == [(0, []), (1, ["e0"]), (2, ["e1"])]
    assert [r.timed for r in context.recordings] == [True]


def test_timed_and_untimed_runs_have_their_own_recordings():
    context, device = _Context(), _Device("gpu")
    schedule = Schedule()
    _chain(schedule, context, device, 2)
    for timed in (True, False, True, False):
        schedule.run([None] * 2, timed)
    assert [r.timed for r in context.recordings] == [True, False]
    assert [r.replays for r in context.recordings] == [2, 2]


def test_runs_over_two_contexts_or_two_queues_are_enqueued_command_by_command(monkeypatch):
    from clnn import schedule as schedule_module
    forwarded = []
    monkeypatch.setattr(schedule_module.BRIDGE, "forward", lambda event, *rest: forwarded.append(event) or "fwd")
    for second_context, second_device in [(_Context(), _Device("gpu")), (None, _Device("other"))]:
        first = _Context()
        context = second_context or first
        schedule = Schedule()
        _chain(schedule, first, _Device("gpu"), 2)
        schedule.add(context, second_device, lambda wait_for: context.enqueued.append(("x", wait_for)) or "ex",
                     [1], "kernel", "x")
        for _ in range(2):
            events = [None] * 3
            assert schedule.run(events) is False
            assert events == ["e0", "e1", "ex"]
        assert first.recordings == [] and context.recordings == []
    assert forwarded == ["e1", "e1"]  # the cross-context run's dependency went through the bridge


def test_a_context_that_cannot_record_enqueues_every_run():
    context, device = _Context(recordable=False), _Device("cpu")
    schedule = Schedule()
    _chain(schedule, context, device, 2)
    for _ in range(3):
        assert schedule.run([None] * 2) is False
    assert len(context.enqueued) == 6


def test_a_failed_recording_falls_back_to_enqueueing(caplog):
    context, device = _Context(fail="record"), _Device("gpu")
    schedule = Schedule()
    _chain(schedule, context, device, 2)
    events = [None] * 2
    assert schedule.run(events) is False and events == ["e0", "e1"]
    assert "recording the run on gpu failed (cannot capture)" in caplog.text
    schedule.run([None] * 2)
    assert len(context.recordings) == 1  # not tried again


def test_a_failed_replay_names_the_device():
    context, device = _Context(fail="replay"), _Device("gpu")
    schedule = Schedule()
    _chain(schedule, context, device, 2)
    with pytest.raises(clnn.DeviceError, match="replaying the recorded run on gpu failed: launch failed") as caught:
        schedule.run([None] * 2)
    assert caught.value.device == "gpu"


# a real model through the replay path --------------------------------------------------

class _Reenqueue:
    """A recording that replays by enqueueing the commands again: the
    schedule's and executor's side of a replay, on any device."""

    def __init__(self):
        self.enqueue_all, self.replays = None, 0

    def record(self, enqueue_all):
        self.enqueue_all = enqueue_all  # runs nothing now, as a capture does

    def replay(self):
        self.replays += 1
        return self.enqueue_all()


@pytest.mark.parametrize("name", ["lenet5", "squeezenet"])
def test_a_replayed_model_gives_the_reference_and_a_timeline(device, name, monkeypatch, rng):
    model = clnn.models.get(name)
    executor = Executor(model, Plan.single(model, device), [device], memory="discrete")
    (context,) = executor.contexts
    recordings = []
    monkeypatch.setattr(context, "recorder", lambda d, timed: recordings.append(_Reenqueue()) or recordings[-1],
                        raising=False)
    executor.poison()
    for _ in range(2):
        feeds = {i.name: rand(rng, i.shape) for i in model.inputs}
        (actual,) = executor.run(feeds)
        assert rel_err(actual, model.reference(feeds)[0]) < 1e-4
    assert [r.replays for r in recordings] == [2]
    timeline = executor.timeline()
    assert len(timeline) == len(executor.schedule.commands)
    assert all(r["start"] <= r["end"] for r in timeline)
    assert {r["kind"] for r in timeline} >= {"kernel", "to_device", "to_host"}


# the CUDA stream's capture, against a stand-in driver ------------------------------------

class _Enum:
    def __init__(self, **members):
        self.__dict__.update(members)


class FakeCuda:
    """Streams that run what is enqueued at once, or record it into a graph
    while capturing; events are stamped from a counter as they run."""

    CUstream_flags = _Enum(CU_STREAM_NON_BLOCKING=1)
    CUevent_flags = _Enum(CU_EVENT_DEFAULT=0, CU_EVENT_BLOCKING_SYNC=1)
    CUevent_record_flags = _Enum(CU_EVENT_RECORD_DEFAULT=0, CU_EVENT_RECORD_EXTERNAL=1)
    CUstreamCaptureMode = _Enum(CU_STREAM_CAPTURE_MODE_RELAXED=2)

    def __init__(self):
        self.clock, self.counter = 0, 0
        self.stamps, self.ran, self.created = {}, [], 0
        self.capturing, self.graphs, self.execs = None, {}, {}
        self.live_graphs = set()

    def _new(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _tick(self):
        self.clock += 1
        return self.clock

    def cuStreamCreate(self, flags):
        return 0, "stream"

    def cuEventCreate(self, flags):
        self.created += 1
        return 0, self._new("event")

    def cuEventDestroy(self, event):
        return (0,)

    def cuEventRecord(self, event, stream):
        assert self.capturing is None, "a plain event record while capturing makes no node"
        self.stamps[event] = self._tick()
        return (0,)

    def cuEventRecordWithFlags(self, event, stream, flags):
        if self.capturing is not None:
            assert flags == 1
            self.capturing.append(("record", event))
        else:
            self.stamps[event] = self._tick()
        return (0,)

    def kernel(self, name):
        """What a test enqueues as its command."""
        if self.capturing is not None:
            self.capturing.append(("kernel", name))
        else:
            self.ran.append(name)
            self._tick()

    def cuEventSynchronize(self, event):
        assert event in self.stamps, "waiting for an event that never ran"
        return (0,)

    def cuEventElapsedTime(self, start, end):
        return 0, 1000.0 * (self.stamps[end] - self.stamps[start])  # a tick is a second: stale clocks show

    def cuStreamWaitEvent(self, stream, event, flags):
        return (0,)

    def cuStreamBeginCapture(self, stream, mode):
        assert self.capturing is None and mode == 2
        self.capturing = []
        return (0,)

    def cuStreamEndCapture(self, stream):
        graph = self._new("graph")
        self.graphs[graph], self.capturing = self.capturing, None
        self.live_graphs.add(graph)
        return 0, graph

    def cuGraphDestroy(self, graph):
        self.live_graphs.discard(graph)
        return (0,)

    def cuGraphInstantiate(self, graph, flags):
        executable = self._new("exec")
        self.execs[executable] = list(self.graphs[graph])
        return 0, executable

    def cuGraphExecDestroy(self, executable):
        return (0,)

    def cuGraphLaunch(self, executable, stream):
        for kind, what in self.execs[executable]:
            if kind == "kernel":
                self.ran.append(what)
                self._tick()
            else:
                self.stamps[what] = self._tick()
        return (0,)


class _Ctx:
    def __init__(self):
        self.waits = self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture
def cuda(monkeypatch):
    fake = FakeCuda()
    for module in (cuda_events, cuda_stream, cuda_graph):
        monkeypatch.setattr(module, "cu", lambda: fake)
    return fake


def _commands(cuda, stream, names):
    def enqueue_all():
        found = []
        for name in names:
            found.append(stream.enqueue([found[-1]] if found else [], lambda handle, n=name: cuda.kernel(n)))
        return found
    return enqueue_all


def test_a_timed_capture_runs_nothing_and_each_replay_times_every_command(cuda):
    stream = cuda_stream.Stream(_Ctx())
    recording = cuda_graph.Recording(stream, timed=True)
    recording.record(_commands(cuda, stream, ["a", "b", "c"]))
    assert cuda.ran == [] and cuda.capturing is None
    assert cuda.live_graphs == set()  # the captured graph is dropped once instantiated
    for run in (1, 2):
        found = recording.replay()
        stream.finish()
        assert cuda.ran == ["a", "b", "c"] * run
        times = [stream.times(e) for e in found]
        assert all(start < end <= time.perf_counter_ns() for start, end in times)
        assert [t[1] for t in times] == sorted(t[1] for t in times)  # in order, one after another
        assert times[0][0] < times[1][0]


def test_an_untimed_capture_makes_no_events_and_has_no_timeline(cuda):
    stream = cuda_stream.Stream(_Ctx())
    recording = cuda_graph.Recording(stream, timed=False)
    recording.record(_commands(cuda, stream, ["a", "b"]))
    assert cuda.created == 0
    found = recording.replay()
    assert len(found) == 2
    for event in found:
        event.wait()
        assert event.cause is None
    assert cuda.ran == ["a", "b"]
    with pytest.raises(clnn.DeviceError, match="replayed as one CUDA graph without per-command events"):
        stream.times(found[0])


def test_a_capture_waiting_for_another_context_is_abandoned(cuda):
    stream = cuda_stream.Stream(_Ctx())
    user = cuda_events.UserEvent()
    user.settle()

    def enqueue_all():
        first = stream.enqueue([], lambda handle: cuda.kernel("a"))
        stream.enqueue([first, user], lambda handle: cuda.kernel("b"))

    with pytest.raises(clnn.DeviceError, match="waits for another stream or context"):
        cuda_graph.Recording(stream, timed=True).record(enqueue_all)
    assert cuda.capturing is None and cuda.live_graphs == set() and cuda.ran == []
    assert isinstance(stream.capture_failure, clnn.DeviceError)  # its context records no more runs
    stream.enqueue([], lambda handle: cuda.kernel("after"))  # the stream runs as before
    assert cuda.ran == ["after"]


def test_other_threads_wait_for_a_capture_and_stay_out_of_it(cuda):
    stream = cuda_stream.Stream(_Ctx())
    other = threading.Thread(target=lambda: stream.enqueue([], lambda handle: cuda.kernel("other")))

    def enqueue_all():
        first = stream.enqueue([], lambda handle: cuda.kernel("a"))
        other.start()
        time.sleep(0.2)  # the other thread is waiting for the stream meanwhile
        return [first, stream.enqueue([first], lambda handle: cuda.kernel("b"))]

    recording = cuda_graph.Recording(stream, timed=True)
    recording.record(enqueue_all)
    other.join(5)
    assert cuda.ran == ["other"]
    assert [what for kind, what in next(iter(cuda.execs.values())) if kind == "kernel"] == ["a", "b"]
    recording.replay()
    assert cuda.ran == ["other", "a", "b"]


def test_the_executor_passes_its_timed_flag(device, monkeypatch):
    model = clnn.models.get("lenet5")
    executor = Executor(model, Plan.single(model, device), [device])
    seen = []
    original = executor.schedule.run
    monkeypatch.setattr(executor.schedule, "run",
                        lambda events, timed=True: seen.append(timed) or original(events, timed))
    feeds = {i.name: np.zeros(i.shape, np.float32) for i in model.inputs}
    executor.run(feeds)
    executor.timed = False
    executor.run(feeds)
    assert seen == [True, False]
