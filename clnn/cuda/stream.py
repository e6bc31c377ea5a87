"""A CUDA context's queue: one non-blocking stream per device, with what the
executor expects of a queue (flush, finish) and of its events (wait, times),
and the capture of commands into a CUDA graph (graph.py replays it)."""

import gc
import threading
import time

from ..errors import DeviceError
from .driver import CudaError, call, cu, release
from .events import Event, UserEvent, destroy, new_event

UNTIMED = ("this run was replayed as one CUDA graph without per-command events, so it has no timeline "
           "(Executor.timed = True records them)")


class Stream:
    """In order, like an OpenCL queue. Non-blocking, so that it does not
    serialise with the legacy default stream that other libraries may use."""

    def __init__(self, ctx):
        self.ctx = ctx  # the context the stream runs in: a device's primary one, or a green one
        with ctx:
            self.handle = call(cu().cuStreamCreate, cu().CUstream_flags.CU_STREAM_NON_BLOCKING)
        # keeps each command's waits, events and launch together, and a
        # capture's commands (reentrant: the capturing thread enqueues them)
        self._lock = threading.RLock()
        self._capture = None  # (capturing thread, timed) while commands are recorded into a graph
        self.capture_failure = None  # why a capture failed: then runs are enqueued command by command
        self._sequence = 0
        self._waited = []  # user events waited on since the last finish
        self._clock_lock = threading.Lock()
        self._reference = None  # (event, its host time, sequence it follows)

    def flush(self):
        """Nothing to do: CUDA submits work as it is enqueued."""

    def enqueue(self, wait_for, command):
        """Run ``command(stream handle)``, which enqueues one operation, after
        ``wait_for`` and between a start and an end event; returns its Event."""
        if self._capture is not None and self._capture[0] == threading.get_ident():
            return self._enqueue_captured(wait_for, command)
        for dep in wait_for:
            if isinstance(dep, UserEvent) and not dep.on_device:
                dep.wait()  # raises DeviceError if it failed
        with self.ctx, self._lock:
            for dep in wait_for:
                if isinstance(dep, UserEvent):
                    if dep.on_device:
                        dep.enqueue_wait(self.handle)
                        self._waited.append(dep)
                elif dep.stream is not self:  # this stream's own events come first anyway
                    call(cu().cuStreamWaitEvent, self.handle, dep.end, 0)
            self._sequence += 1
            event = Event(self, self._sequence, wait_for)
            call(cu().cuEventRecord, event.start, self.handle)
            command(self.handle)
            call(cu().cuEventRecord, event.end, self.handle)
        return event

    def _enqueue_captured(self, wait_for, command):
        """``command`` recorded into the graph being captured; its Event
        (of external event nodes, which each replay records) where the
        capture is timed, else None. The graph replays in stream order, so
        only waits for other streams or contexts cannot be recorded."""
        if any(dep is not None and (isinstance(dep, UserEvent) or dep.stream is not self) for dep in wait_for):
            raise DeviceError("a command waits for another stream or context; such runs are not captured")
        with self.ctx, self._lock:
            if not self._capture[1]:
                command(self.handle)
                return None
            event = Event(self, 0, ())
            external = int(cu().CUevent_record_flags.CU_EVENT_RECORD_EXTERNAL)
            call(cu().cuEventRecordWithFlags, event.start, self.handle, external)
            command(self.handle)
            call(cu().cuEventRecordWithFlags, event.end, self.handle, external)
        return event

    def capture(self, enqueue_all, timed):
        """(a CUDA graph of the commands that ``enqueue_all()`` enqueues on
        this stream, what it returned). Nothing runs; other threads'
        commands wait until the capture ends. Relaxed capture mode: other
        threads' calls, and a finalizer freeing memory here, cannot spoil
        it; the cyclic collector is paused meanwhile all the same."""
        with self.ctx, self._lock:
            call(cu().cuStreamBeginCapture, self.handle,
                 cu().CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED)
            self._capture = (threading.get_ident(), timed)
            collecting = gc.isenabled()
            gc.disable()
            try:
                result = enqueue_all()
            except BaseException:
                self._abandon_capture()
                raise
            finally:
                self._capture = None
                if collecting:
                    gc.enable()
            return call(cu().cuStreamEndCapture, self.handle), result

    def _abandon_capture(self):
        try:
            graph = call(cu().cuStreamEndCapture, self.handle)
        except CudaError:  # an invalidated capture ends with an error and no graph
            return
        release(self.ctx.waits, cu().cuGraphDestroy, graph)

    def sync(self):
        """Wait for everything enqueued so far."""
        with self.ctx:
            marker = new_event(blocking=True)
        try:
            with self.ctx, self._lock:
                call(cu().cuEventRecord, marker, self.handle)
            with self.ctx.waits:
                call(cu().cuEventSynchronize, marker)
        finally:
            destroy(self.ctx.waits, marker)

    def finish(self):
        """sync, then DeviceError if a user event waited on failed."""
        with self._lock:
            waited, self._waited = self._waited, []
        self.sync()
        cause = next((u.cause for u in waited if u.cause), None)
        if cause:
            raise DeviceError(cause)

    def times(self, event):
        """(start, end) of a completed Event in host perf_counter nanoseconds."""
        if not isinstance(event, Event):
            raise DeviceError(UNTIMED)
        with self._clock_lock:
            reference, host_ns, sequence = self._reference or (None, 0, -1)
            if sequence < event.sequence:
                reference, host_ns, sequence = self._calibrate()
            with self.ctx.waits:
                return tuple(host_ns - round(call(cu().cuEventElapsedTime, e, reference) * 1e6)
                             for e in (event.start, event.end))

    def _calibrate(self):
        """A new reference event after everything enqueued, and the host time
        at which the GPU passed it. Times are measured back from a reference
        made after the event, because cuEventElapsedTime gives float
        milliseconds, which lose precision with distance."""
        self.sync()  # so that the reference runs as soon as it is recorded
        with self.ctx, self._lock:
            reference = new_event(blocking=False)
            before = time.perf_counter_ns()
            call(cu().cuEventRecord, reference, self.handle)
            sequence = self._sequence
        with self.ctx.waits:
            call(cu().cuEventSynchronize, reference)
        after = time.perf_counter_ns()
        if self._reference is not None:
            destroy(self.ctx.waits, self._reference[0])
        self._reference = (reference, (before + after) // 2, sequence)
        return self._reference
