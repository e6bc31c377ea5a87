"""Contexts, grouped from selected devices, owned by a pool and closable.

By default the devices of one platform share a context (and so memory and
events); ``grouping="device"`` (or CLNN_CONTEXTS=device) gives each device
its own, which is how the cross-context paths are exercised on one platform.
``memory`` (or CLNN_MEMORY) forces the unified or the discrete memory path.

A context holds the kernels compiled for it, so contexts are kept in a pool
and reused by every session that asks for the same devices; the process's
default pool is closed at exit, and a pool of one's own can be closed at
any time.
"""

import atexit
import os
import threading

from ..errors import DeviceError
from .backend import backends

GROUPINGS = ("platform", "device")
MEMORY_MODES = ("auto", "unified", "discrete")


def option(value, env, allowed, default):
    """``value``, else the environment variable ``env``, else ``default``;
    DeviceError unless it is one of ``allowed``."""
    value = value or os.environ.get(env, "").strip().lower() or default
    if value not in allowed:
        raise DeviceError(f"{env}/option value {value!r} is not one of {', '.join(allowed)}")
    return value


class ContextPool:
    def __init__(self):
        self._contexts = {}
        self._lock = threading.Lock()
        self.closed = False

    def contexts_for(self, devices, grouping=None, memory=None):
        """The contexts holding ``devices``, in the order the devices come."""
        grouping = option(grouping, "CLNN_CONTEXTS", GROUPINGS, "platform")
        memory = option(memory, "CLNN_MEMORY", MEMORY_MODES, "auto")
        groups = {}
        for d in dict.fromkeys(devices):  # a device named twice is still one device
            key = d.id if grouping == "device" else d.platform_key
            groups.setdefault(key, []).append(d)
        found = []
        with self._lock:
            if self.closed:
                raise DeviceError("this context pool is closed")
            for members in groups.values():
                key = (tuple(d.id for d in members), memory)
                context = self._contexts.get(key)
                if context is None:
                    backend = backends()[members[0].backend]
                    context = self._contexts[key] = backend.create_context(members, memory)
                found.append(context)
        return found

    def close(self):
        """Close every context of the pool (their queues finish first)."""
        with self._lock:
            contexts, self._contexts, self.closed = list(self._contexts.values()), {}, True
        for context in contexts:
            context.close()


_default = None
_default_lock = threading.Lock()


def default_pool():
    """The process's pool, closed at exit."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ContextPool()
            atexit.register(_default.close)
        return _default


def contexts_for(devices, grouping=None, memory=None, pool=None):
    """The contexts of ``pool`` (default: the process's) holding ``devices``."""
    return (pool or default_pool()).contexts_for(devices, grouping, memory)
