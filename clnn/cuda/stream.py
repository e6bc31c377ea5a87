"""A CUDA context's queue: one non-blocking stream per device, with what the
executor expects of a queue (flush, finish) and of its events (wait, times)."""

import threading
import time

from ..errors import DeviceError
from .driver import call, cu
from .events import Event, UserEvent, destroy, new_event


class Stream:
    """In order, like an OpenCL queue. Non-blocking, so that it does not
    serialise with the legacy default stream that other libraries may use."""

    def __init__(self, ctx):
        self.ctx = ctx  # the context the stream runs in: a device's primary one, or a green one
        with ctx:
            self.handle = call(cu().cuStreamCreate, cu().CUstream_flags.CU_STREAM_NON_BLOCKING)
        self._lock = threading.Lock()  # keeps each command's waits, events and launch together
        self._sequence = 0
        self._waited = []  # user events waited on since the last finish
        self._clock_lock = threading.Lock()
        self._reference = None  # (event, its host time, sequence it follows)

    def flush(self):
        """Nothing to do: CUDA submits work as it is enqueued."""

    def enqueue(self, wait_for, command):
        """Run ``command(stream handle)``, which enqueues one operation, after
        ``wait_for`` and between a start and an end event; returns its Event."""
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
            destroy(self.ctx, marker)

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
            destroy(self.ctx, self._reference[0])
        self._reference = (reference, (before + after) // 2, sequence)
        return self._reference
