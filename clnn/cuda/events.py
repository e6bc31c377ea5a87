"""Events of a CUDA context: those of enqueued commands, and user events that
the host completes (the bridge's stand-ins for other contexts' commands).

A user event is a word of pinned, mapped host memory that the stream waits
on with cuStreamWaitValue32, so the GPU waits and the host does not; the
host completes it by writing the word. Where the device cannot wait on
memory, the enqueuing thread waits instead (the schedule enqueues in
dependency order, so that cannot deadlock). A user event settled as failed
still releases the stream (nothing may hang), and every command behind it
reports the failure when waited on.
"""

import collections
import threading
import weakref

import numpy as np

from ..errors import DeviceError
from .driver import call, cu, release
from .memory import pinned_array

FAILED = "a command in another context that this one waits for failed"


def new_event(blocking):
    """A CUDA event (the context must be current). Blocking ones are waited
    for by sleeping, not spinning: the host's cores may be busy with a CPU
    device's kernels meanwhile."""
    flags = cu().CUevent_flags.CU_EVENT_BLOCKING_SYNC if blocking else cu().CUevent_flags.CU_EVENT_DEFAULT
    return call(cu().cuEventCreate, flags)


def destroy(ctx, *events):
    for event in events:
        release(ctx, cu().cuEventDestroy, event)


class Event:
    """A command of a Stream, between a ``start`` and an ``end`` CUDA event
    that the stream records. ``upstream``: what it waited for (Events and
    UserEvents), kept until it has completed to tell whether a failure
    reached it. Made with the context current."""

    def __init__(self, stream, sequence, upstream):
        self.stream = stream
        self.sequence = sequence
        self.start = new_event(blocking=False)
        self.end = new_event(blocking=True)
        weakref.finalize(self, destroy, stream.ctx.waits, self.start, self.end)
        self._upstream = tuple(upstream)
        self._cause = None

    def wait(self):
        with self.stream.ctx.waits:
            call(cu().cuEventSynchronize, self.end)
        cause = self.cause
        if cause:
            raise DeviceError(cause)

    @property
    def cause(self):
        """Why this command's inputs are invalid, or None; only meaningful
        once it completed, when everything upstream has settled."""
        _resolve(self)
        return self._cause


def _resolve(event):
    """Fix ``_cause`` of ``event`` and of every unresolved event upstream of
    it, deepest first, without recursion (chains run as long as a model)."""
    todo = [event]
    while todo:
        e = todo[-1]
        if e._upstream is None:
            todo.pop()
            continue
        pending = [u for u in e._upstream if isinstance(u, Event) and u._upstream is not None]
        if pending:
            todo.extend(pending)
            continue
        todo.pop()
        e._cause = next((u.cause for u in e._upstream if u.cause), None)
        e._upstream = None  # lets the run's earlier events go


class FlagPool:
    """Words of pinned host memory mapped for the device, one per pending
    user event. A word only grows: a user event waits for the word to reach
    its own generation, one more than the word's previous user's, so a word
    is reused as soon as it is settled; later waits for the old generation
    still pass. (CUDA compares cyclically, so generations may wrap.)"""

    WORDS = 1024  # one page

    def __init__(self, primary):
        self._primary = primary
        self._free = collections.deque()  # first in, first out: spreads generations over words
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            if not self._free:
                self._grow()
            slot = self._free.popleft()
        slot.generation = (slot.generation + 1) & 0xFFFFFFFF
        return slot

    def give(self, slot):
        with self._lock:
            self._free.append(slot)

    def _grow(self):
        words = pinned_array(self._primary, self.WORDS, np.uint32)
        words[:] = 0
        with self._primary:
            device = int(call(cu().cuMemHostGetDevicePointer, words.ctypes.data, 0))
        self._free.extend(_Slot(words, i, device + 4 * i) for i in range(self.WORDS))


class _Slot:
    def __init__(self, words, index, device_ptr):
        self.words = words  # keeps the page alive
        self.index = index
        self.device_ptr = device_ptr
        self.generation = 0


class UserEvent:
    """An event the host settles; with a FlagPool the device waits for it,
    without one the enqueuing thread does."""

    def __init__(self, pool=None):
        self._pool = pool
        self._slot = pool.take() if pool else None
        self._generation = self._slot.generation if pool else None
        self._settled = threading.Event()
        self.cause = None

    @property
    def on_device(self):
        return self._pool is not None

    def enqueue_wait(self, stream_handle):
        """Make a stream wait for this event without blocking the host."""
        call(cu().cuStreamWaitValue32, stream_handle, self._slot.device_ptr, self._generation,
             cu().CUstreamWaitValue_flags.CU_STREAM_WAIT_VALUE_GEQ)

    def settle(self, ok=True):
        if self._settled.is_set():
            raise DeviceError("a user event can be settled once")
        if not ok:
            self.cause = FAILED
        if self._pool is not None:
            self._slot.words[self._slot.index] = self._generation
            self._pool.give(self._slot)
        self._settled.set()

    def wait(self):
        self._settled.wait()
        if self.cause:
            raise DeviceError(self.cause)
