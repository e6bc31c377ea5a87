"""GPU slices: a CUDA device that runs on some of a GPU's streaming
multiprocessors, through a green context (driver API, CUDA 12.4 and newer).

A slice is a clnn.Device of its own (selected as ``cuda:sms=N``) whose
compute units are the SMs the driver granted: it splits SMs in steps of its
own (8 on an H100/H200), so a request is rounded up, with a warning. Its
context makes a green context of that many SMs and runs its stream there;
memory is the device's, allocated in its primary context, so slices and the
whole GPU share the address space. Slices of one GPU in one process are
each carved from the whole GPU, so they may share SMs: a slice bounds what a
context uses, it does not reserve SMs against other contexts.

The functions used have the same arguments in cuda-bindings 12.x and 13.x.
"""

import dataclasses
import logging
import threading
import weakref

from ..errors import DeviceError
from ..runtime.selector import slice_id
from .driver import CudaError, call, cu, release

log = logging.getLogger("clnn")

MIN_DRIVER = (12, 4)
FUNCTIONS = ("cuDeviceGetDevResource", "cuDevSmResourceSplitByCount", "cuDevResourceGenerateDesc",
             "cuGreenCtxCreate", "cuCtxFromGreenCtx", "cuGreenCtxDestroy")


def _refuse(device, why):
    return DeviceError(f"{device} cannot run on a slice of its SMs: {why}", device=device.id)


def _check_support(device):
    if tuple(device.platform_version[:2]) < MIN_DRIVER:
        raise _refuse(device, "GPU slices use CUDA green contexts, which need a CUDA {}.{} or newer driver; "
                              "this one is {}".format(*MIN_DRIVER, device.driver_version))
    missing = [name for name in FUNCTIONS if not hasattr(cu(), name)]
    if missing:
        raise _refuse(device, f"the installed cuda-bindings lack {missing[0]} (green contexts came with 12.4)")


def split(device, count):
    """(a resource of at least ``count`` SMs of ``device`` (a clnn.Device of
    the cuda backend), the number of SMs in it)."""
    try:
        whole = call(cu().cuDeviceGetDevResource, device.handle.device,
                     cu().CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM)
        groups, made, _rest = call(cu().cuDevSmResourceSplitByCount, 1, whole, 0, count)
    except CudaError as exc:
        raise _refuse(device, f"splitting off {count} SMs failed: {exc}") from exc
    except RuntimeError as exc:  # cuda-bindings: the driver lacks the function
        raise _refuse(device, f"the driver has no green contexts ({exc})") from exc
    if not made or not groups:
        raise _refuse(device, f"the driver made no group of {count} SMs")
    return groups[0], int(groups[0].sm.smCount)


def slice_device(device, count):
    """The clnn.Device of a slice of at least ``count`` SMs of ``device``."""
    if device.handle.sms is not None:
        raise _refuse(device, "it is a slice already; slice the whole GPU instead")
    if not 1 <= count < device.compute_units:
        raise _refuse(device, f"it has {device.compute_units} SMs; a slice takes 1 to {device.compute_units - 1} "
                              "(select the whole GPU without sms=)")
    _check_support(device)
    _, granted = split(device, count)
    if granted >= device.compute_units:
        raise _refuse(device, f"asked for {count} SMs, the driver would grant all {granted} (select the whole "
                              "GPU without sms=)")
    if granted != count:
        log.warning("clnn: %s: asked for a slice of %d SMs, the driver granted %d (it splits SMs in larger "
                    "steps); the slice is %s", device, count, granted, slice_id(device.id, granted))
    return dataclasses.replace(device, id=slice_id(device.id, granted), compute_units=granted,
                               handle=dataclasses.replace(device.handle, sms=granted))


class GreenContext:
    """A green context of a slice's SMs, made current with ``with`` as
    driver.Primary is. Green contexts of CUDA 12 may be current in one
    thread at a time, so a lock is held while it is. ``waits`` is what to
    make current around blocking waits and releases (the device's primary
    context): a thread waiting for this slice's work never holds that lock,
    and a finalizer, which may run in any thread holding any lock, never
    takes it."""

    def __init__(self, primary, info, device):
        self.waits = primary
        resource, granted = split(device, info.sms)
        if granted != info.sms:
            raise _refuse(device, f"the driver now grants {granted} SMs for a slice of {info.sms}")
        flags = int(cu().CUgreenCtxCreate_flags.CU_GREEN_CTX_DEFAULT_STREAM)  # required by CUDA 12
        try:
            with primary:  # the primary context active: creating the green one costs less
                desc = call(cu().cuDevResourceGenerateDesc, [resource], 1)
                self.green = call(cu().cuGreenCtxCreate, desc, info.device, flags)
            self.handle = call(cu().cuCtxFromGreenCtx, self.green)
        except CudaError as exc:
            raise _refuse(device, f"creating a green context of {info.sms} SMs failed: {exc}") from exc
        self._lock = threading.RLock()
        weakref.finalize(self, release, primary, cu().cuGreenCtxDestroy, self.green)

    def __enter__(self):
        self._lock.acquire()
        try:
            call(cu().cuCtxPushCurrent, self.handle)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            call(cu().cuCtxPopCurrent)
        finally:
            self._lock.release()
