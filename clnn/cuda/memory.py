"""Tensor memory of a CUDA context, and region copies between it and host memory.

A discrete context keeps tensors in device memory (cuMemAlloc) and copies
boxes to and from their homes, which it allocates as pinned host memory so
that copies run asynchronously at full speed (and other contexts, such as
PoCL's, wrap the same memory). A unified context runs kernels on the homes
themselves, registered and mapped into the GPU's address space. Managed
memory is never used: its migrations would hide the copies clnn plans.
"""

import functools
import threading
import weakref

import numpy as np

from .driver import call, cu, release


class DeviceBuffer:
    """Device memory; ``ptr`` is its device address."""

    def __init__(self, primary, nbytes):
        with primary:
            self.ptr = int(call(cu().cuMemAlloc, max(int(nbytes), 4)))
        weakref.finalize(self, release, primary, cu().cuMemFree, self.ptr)


class _Registrations:
    """Host arrays registered with CUDA, counted: registration is portable
    (every context sees it), so contexts on several GPUs that use one home
    in place share one registration, and the last to let go unregisters it."""

    def __init__(self):
        self._counts = {}
        # reentrant: a collection inside map() may run unmap() for another buffer
        self._lock = threading.RLock()

    def map(self, primary, array):
        """The device address of ``array``, registered on first use."""
        ptr = array.ctypes.data
        with self._lock, primary:
            if ptr not in self._counts:
                flags = cu().CU_MEMHOSTREGISTER_PORTABLE | cu().CU_MEMHOSTREGISTER_DEVICEMAP
                call(cu().cuMemHostRegister, ptr, array.nbytes, flags)
                self._counts[ptr] = 0
            self._counts[ptr] += 1
            return int(call(cu().cuMemHostGetDevicePointer, ptr, 0))

    def unmap(self, primary, ptr):
        with self._lock:
            self._counts[ptr] -= 1
            if self._counts[ptr] == 0:
                del self._counts[ptr]
                release(primary, cu().cuMemHostUnregister, ptr)


_REGISTRATIONS = _Registrations()


class MappedBuffer:
    """A host array used in place by kernels; holds the array alive while
    registered."""

    def __init__(self, primary, home):
        self.home = home
        self.ptr = _REGISTRATIONS.map(primary, home)
        weakref.finalize(self, _REGISTRATIONS.unmap, primary, home.ctypes.data)


class _PinnedHost:
    """Pinned host memory seen by numpy through the array interface: arrays
    made from it keep it alive, and it is freed when the last one goes."""

    def __init__(self, primary, count, dtype):
        # portable: pinned for every context; mapped: usable in place by
        # the device as well
        flags = cu().CU_MEMHOSTALLOC_PORTABLE | cu().CU_MEMHOSTALLOC_DEVICEMAP
        with primary:
            ptr = call(cu().cuMemHostAlloc, count * dtype.itemsize, flags)
        self.__array_interface__ = {"data": (ptr, False), "shape": (count,), "typestr": dtype.str, "version": 3}
        weakref.finalize(self, release, primary, cu().cuMemFreeHost, ptr)


def pinned_array(primary, count, dtype=np.float32):
    """A flat array of ``count`` items in pinned host memory."""
    return np.asarray(_PinnedHost(primary, count, np.dtype(dtype)))


@functools.lru_cache(maxsize=4096)
def copy_params(device_ptr, host_ptr, geometry, to_host):
    """The cuMemcpy3DAsync description of a box (a clnn.box.Geometry) between
    a device buffer and a host array of the same layout. Made once per box
    and reused by every run: it depends on nothing else."""
    if geometry.slice_pitch % geometry.row_pitch:
        raise ValueError(f"{geometry} is not a stack of whole pitched planes")
    params = cu().CUDA_MEMCPY3D()
    sides = {"src": to_host, "dst": not to_host}  # which side is the device buffer
    for side, on_device in sides.items():
        if on_device:
            setattr(params, f"{side}MemoryType", cu().CUmemorytype.CU_MEMORYTYPE_DEVICE)
            setattr(params, f"{side}Device", device_ptr)
        else:
            setattr(params, f"{side}MemoryType", cu().CUmemorytype.CU_MEMORYTYPE_HOST)
            setattr(params, f"{side}Host", host_ptr)
        setattr(params, f"{side}XInBytes", geometry.origin[0])
        setattr(params, f"{side}Y", geometry.origin[1])
        setattr(params, f"{side}Z", geometry.origin[2])
        setattr(params, f"{side}Pitch", geometry.row_pitch)
        setattr(params, f"{side}Height", geometry.slice_pitch // geometry.row_pitch)
    params.WidthInBytes, params.Height, params.Depth = geometry.region
    return params
