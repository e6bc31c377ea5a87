"""cuda-python plumbing: the bindings imported on first use, results
checked, and a device's primary context made current around each use.

Nothing here imports cuda-python at import time: ``import clnn`` must work
on machines without it, where the backend simply finds no devices.
"""

import functools
import logging

from ..errors import DeviceError

log = logging.getLogger("clnn")


@functools.lru_cache(maxsize=None)
def cu():
    """cuda.bindings.driver."""
    from cuda.bindings import driver
    return driver


@functools.lru_cache(maxsize=None)
def rtc():
    """cuda.bindings.nvrtc (needs no GPU and no driver)."""
    from cuda.bindings import nvrtc
    return nvrtc


class CudaError(DeviceError):
    """A driver or NVRTC call that failed; ``result`` is its status enum."""

    def __init__(self, function, result):
        super().__init__(f"{function} failed: {result.name}")
        self.result = result


def call(function, *args):
    """``function(*args)`` of cuda-python, which returns (status, *values):
    the values (one, a tuple of several, or None), or CudaError."""
    result, *values = function(*args)
    if int(result):  # every status enum has success at 0
        raise CudaError(function.__name__, result)
    if len(values) == 1:
        return values[0]
    return tuple(values) or None


def attribute(device, name):
    """cuDeviceGetAttribute of CU_DEVICE_ATTRIBUTE_<name>."""
    return call(cu().cuDeviceGetAttribute, getattr(cu().CUdevice_attribute, f"CU_DEVICE_ATTRIBUTE_{name}"),
                device)


class Primary:
    """A device's primary context (the one the CUDA runtime and other
    libraries share), made current with ``with``. It is pushed and popped
    rather than set, so that a thread's own current context is left as it
    was; clnn calls come from any thread (bridge workers, the host).
    ``waits``: the context to make current around blocking waits and
    releases (a green context's differs, see green.py)."""

    def __init__(self, device):
        self.handle = call(cu().cuDevicePrimaryCtxRetain, device)
        self.waits = self

    def __enter__(self):
        call(cu().cuCtxPushCurrent, self.handle)
        return self

    def __exit__(self, *exc):
        call(cu().cuCtxPopCurrent)


def release(primary, function, *args):
    """Free a resource from a finalizer: never raises, since it may run at
    interpreter exit or after a fatal device error."""
    try:
        with primary:
            call(function, *args)
    except Exception as exc:
        log.debug("%s failed while releasing: %s", function.__name__, exc)
