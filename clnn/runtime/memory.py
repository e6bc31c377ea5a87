"""SharedTensor: one NCHW float32 tensor that the devices of several contexts
write disjoint boxes of and read.

The tensor has a host copy ("home") and a buffer in each context that uses
it. A unified context (devices that work on host memory, host_unified_memory)
wraps the home itself with USE_HOST_PTR, so its devices read and write it in
place and nothing is copied. A discrete context (a GPU with its own memory)
keeps a resident buffer; only boxes that another side produced or needs cross,
through the home. Where a discrete context takes part, the home is its pinned
host memory (a mapped ALLOC_HOST_PTR buffer), which the unified side wraps in
turn: one copy over the bus, none on the CPU side.
"""

import logging
import threading

import numpy as np

from ..box import Box, geometry
from ..host import aligned_empty

log = logging.getLogger("clnn")

class SharedTensor:
    def __init__(self, shape, contexts, name="", slot=None):
        """``slot``: a SharedTensor whose memory this one uses (from its
        start), taking turns with other tensors whose lives do not overlap."""
        self.shape = tuple(int(s) for s in shape)
        self.name = name
        self.size = int(np.prod(self.shape))
        self.nbytes = self.size * 4
        self._slot = slot
        if slot is not None and slot.size < self.size:
            raise ValueError(f"{self} does not fit in {slot}")
        self._contexts = tuple(contexts)
        # the first discrete context provides pinned host memory
        self._home_owner = next((c for c in self._contexts if not c.unified), None)
        self._home = None
        self._buffers = {}
        self._lock = threading.Lock()

    def __repr__(self):
        return f"SharedTensor({self.name!r}, {self.shape})"

    def tenant(self, shape, name):
        """A tensor of ``shape`` living in this one's memory."""
        return SharedTensor(shape, self._contexts, name, slot=self)

    @property
    def home(self):
        """The host copy, shaped NCHW (allocated on first use)."""
        with self._lock:
            if self._home is None and self._slot is not None:
                self._home = self._slot.home.reshape(-1)[:self.size].reshape(self.shape)
            if self._home is None:
                flat = self._home_owner.alloc_home(self.nbytes) if self._home_owner else None
                if flat is None:
                    flat = aligned_empty(self.size)
                self._home = flat[:self.size].reshape(self.shape)
                log.debug("%s: home %s", self, "pinned by " + repr(self._home_owner)
                          if self._home_owner else "plain host memory")
            return self._home

    def buffer(self, context):
        """This tensor's buffer in ``context`` (allocated on first use)."""
        if self._slot is not None:
            return self._slot.buffer(context)
        buf = self._buffers.get(context)
        if buf is None:
            home = self.home.reshape(-1) if context.unified else None
            buf = context.alloc(self.nbytes, home=home)
            with self._lock:
                buf = self._buffers.setdefault(context, buf)
            log.debug("%s in %r: %s", self, context, "home used in place" if context.unified
                      else "resident buffer")
        return buf

    def copy(self, context, queue, box, to_host, wait_for=()):
        """Enqueue a copy of ``box`` between the home and the buffer of a
        discrete context; returns its event."""
        assert not context.unified, "a unified context works on the home in place"
        return context.copy_box(queue, self.buffer(context), self.home.reshape(-1),
                                geometry(box, self.shape), to_host, list(wait_for))

    def whole(self):
        return Box.whole(self.shape)
