"""Device discovery and selection (``devices=`` and ``CLNN_DEVICES``).

Selectors follow pyopencl's PYOPENCL_TEST syntax,
``platform-substring[:device-substring[,device-substring]]``, several joined
by ``;``, matched case-insensitively on names, never on positions. A backend
name (``opencl``, ``cuda``) or a full device id also selects. ``all``,
``cpu``, ``gpu`` and ``accelerator`` select by kind. Within one selector, a
physical device reached through two drivers is kept once (the lowest-ranked
backend and the newest platform win); simulators only come when named.

A selector ending in ``:sms=N`` asks for a slice of each device that its
base selector names: a device of its own that runs on N of the GPU's
streaming multiprocessors (CUDA green contexts; ``cuda:sms=16``,
``cuda:cuda:0:sms=16``). A slice's id is its GPU's with ``-smsN`` after the
platform part (``cuda:cuda-sms16:0``), N the SMs the driver granted, and
selects that slice again.
"""

import os
import re

from ..errors import DeviceError
from .backend import BUILTIN_BACKENDS, backends

KIND_SELECTORS = {"all": None, "cpu": "cpu", "gpu": "gpu", "accelerator": "accelerator"}

_SLICE_SELECTOR = re.compile(r"^(?P<base>.+):sms=(?P<count>[^:]*)$")
_SLICE_ID = re.compile(r"^(?P<backend>[^:]+):(?P<platform>[^:]+)-sms(?P<count>[0-9]+):(?P<index>[^:]+)$")


def slice_id(device_id, count):
    """The id of the slice of ``count`` compute units of the device
    ``device_id`` (backend:platform:index)."""
    backend, platform, index = device_id.split(":")
    return f"{backend}:{platform}-sms{count}:{index}"


def all_devices():
    """Every device of every backend, simulators and duplicates included."""
    found = []
    for backend in backends().values():
        found.extend(backend.devices())
    return found


def _preference(device):
    # a backend that is not loaded here ranks as a plugin would, after the built-in one
    ranks = {name: b.rank for name, b in backends().items()}
    rank = ranks.get(device.backend, 0 if device.backend in BUILTIN_BACKENDS else 1)
    return (rank, tuple(-x for x in device.platform_version), device.id)


def _deduplicate(devices):
    """Keep each physical device once: where it shows on several platforms,
    only the preferred platform's devices stay (one platform may still hold
    several devices on one CPU, as PoCL's POCL_DEVICES does on purpose)."""
    best_platform = {}
    for d in sorted(devices, key=_preference):
        best_platform.setdefault(d.identity, d.platform_key)
    return [d for d in devices if best_platform[d.identity] == d.platform_key]


def _match(item, found):
    item_l = item.lower()
    for d in found:
        if d.id.lower() == item_l:
            return [d]
    sliced = _SLICE_ID.match(item_l) or _SLICE_SELECTOR.match(item_l)
    if sliced:
        return _slices(item, sliced, found)
    if item_l in KIND_SELECTORS:
        kind = KIND_SELECTORS[item_l]
        return _deduplicate([d for d in found if not d.simulator and kind in (None, d.kind)])
    platform_part, _, device_part = item_l.partition(":")
    names = [s for s in device_part.split(",") if s]
    backend_names = {d.backend for d in found}
    if platform_part in backend_names:
        on_platform = [d for d in found if d.backend == platform_part]
    else:
        on_platform = [d for d in found if platform_part in d.platform.lower()]
    matched = [d for d in on_platform if not names or any(n in d.name.lower() for n in names)]
    return _deduplicate(matched)


def _slices(item, sliced, found):
    """Slices of the devices that a slice selector (or a slice's id) names."""
    parts = sliced.groupdict()
    count = parts["count"]
    if not count.isdigit() or int(count) < 1:
        raise DeviceError(f"device selector {item!r}: sms= takes a number of streaming multiprocessors, "
                          f"such as cuda:sms=16, not {count!r}")
    base = parts.get("base") or f"{parts['backend']}:{parts['platform']}:{parts['index']}"
    loaded = backends()
    sliceable = [d for d in found if d.backend in loaded and loaded[d.backend].can_slice]
    wholes = _match(base, sliceable) if sliceable else []
    if not wholes:
        raise DeviceError(f"device selector {item!r}: {base!r} names no device that can run on a share of its "
                          "compute units (CUDA GPUs can, through green contexts: cuda:sms=N); sliceable: "
                          f"{', '.join(d.id for d in sliceable) or 'none'}")
    return [loaded[d.backend].slice(d, int(count)) for d in wholes]


def describe(found):
    if not found:
        return "no devices at all (is an OpenCL driver installed? pip install 'clnn[pocl]' brings PoCL)"
    return "; ".join(f"{d.id} = {d.name!r} on {d.platform!r}" for d in found)


def select(selector=None):
    """The devices a session uses: ``selector`` (a string, or a list of
    Devices or ids) or else CLNN_DEVICES or else ``"all"``."""
    if selector is None:
        selector = os.environ.get("CLNN_DEVICES", "").strip() or "all"
    found = all_devices()
    if isinstance(selector, str):
        items = [s.strip() for s in selector.split(";") if s.strip()]
    else:
        items = [getattr(s, "id", s) for s in selector]
    if not items:
        raise DeviceError(f"empty device selector {selector!r}; devices: {describe(found)}")
    chosen = []
    for item in items:
        if not isinstance(item, str):
            raise DeviceError(f"device selector {item!r} is neither a string nor a clnn.Device")
        matched = _match(item, found)
        if not matched:
            raise DeviceError(f"device selector {item!r} matches no device; devices: {describe(found)}")
        chosen.extend(d for d in matched if d not in chosen)
    return chosen
