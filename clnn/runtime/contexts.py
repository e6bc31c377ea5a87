"""Groups selected devices into contexts, made once per process and reused.

By default the devices of one platform share a context (and so memory and
events); ``layout="device"`` (or CLNN_CONTEXTS=device) gives each device its
own, which is how the cross-context paths are exercised on one platform.
``memory`` (or CLNN_MEMORY) forces the unified or the discrete memory path.
"""

import os
import threading

from ..errors import DeviceError
from .backend import backends

LAYOUTS = ("platform", "device")
MEMORY_MODES = ("auto", "unified", "discrete")

_cache = {}
_lock = threading.Lock()


def _option(value, env, allowed, default):
    value = value or os.environ.get(env, "").strip().lower() or default
    if value not in allowed:
        raise DeviceError(f"{env}/option value {value!r} is not one of {', '.join(allowed)}")
    return value


def contexts_for(devices, layout=None, memory=None):
    """The contexts holding ``devices``, in the order the devices come."""
    layout = _option(layout, "CLNN_CONTEXTS", LAYOUTS, "platform")
    memory = _option(memory, "CLNN_MEMORY", MEMORY_MODES, "auto")
    groups = {}
    for d in dict.fromkeys(devices):  # a device named twice is still one device
        key = d.id if layout == "device" else d.platform_key
        groups.setdefault(key, []).append(d)
    found = []
    for members in groups.values():
        key = (tuple(d.id for d in members), memory)
        with _lock:
            context = _cache.get(key)
            if context is None:
                backend = backends()[members[0].backend]
                context = _cache[key] = backend.create_context(members, memory)
        found.append(context)
    return found
