"""OpenCL-style launches as cuLaunchKernel wants them: bound arguments
packed once, and NDRange sizes turned into a grid of blocks."""

import numpy as np

from ..errors import DeviceError
from .driver import cu

# block size where a launch leaves it to the driver; every kernel checks its
# bounds, so a block may overhang the work
DEFAULT_BLOCK = 256
MAX_BLOCK = (1024, 1024, 64)


class Bound:
    """A kernel with its arguments packed as cuLaunchKernel's void**: one
    8-byte slot per argument and a pointer to each. Launches only read
    them, so one Bound may be launched from several threads."""

    def __init__(self, function, name, args):
        self.function = function
        self._args = tuple(args)  # keeps the buffers alive
        self._slots = np.zeros(len(args), np.uint64)
        for index, arg in enumerate(args):
            if isinstance(arg, (np.int32, np.float32)):
                self._slots[index:index + 1].view(arg.dtype)[0] = arg  # little-endian: low half
            elif hasattr(arg, "ptr"):
                self._slots[index] = arg.ptr
            else:
                raise DeviceError(f"argument {index} of {name} is a {type(arg).__name__}; CUDA kernels take "
                                  "buffers, numpy.int32 and numpy.float32")
        self.params = self._slots.ctypes.data + 8 * np.arange(len(args), dtype=np.uint64)
        _check_count(function, name, len(args))


def _parameter_exists(function, index):
    """True or False, or None where the driver cannot tell (cuFuncGetParamInfo
    came with CUDA 12.4)."""
    try:
        result = cu().cuFuncGetParamInfo(function, index)[0]
    except RuntimeError:  # the driver lacks the function
        return None
    return {cu().CUresult.CUDA_SUCCESS: True, cu().CUresult.CUDA_ERROR_INVALID_VALUE: False}.get(result)


def _check_count(function, name, count):
    """Refuse a wrong number of arguments, as OpenCL does (CUDA would read
    garbage)."""
    if (count and _parameter_exists(function, count - 1) is False) or _parameter_exists(function, count):
        raise DeviceError(f"{name} does not take {count} arguments")


def _power_of_two_at_least(n):
    return 1 << max(int(n) - 1, 0).bit_length()


def grid(global_size, local_size):
    """(grid, block) of three dimensions each for an OpenCL global size (in
    work-items) and local size; without a local size, a block of
    DEFAULT_BLOCK threads shaped to the work, x first."""
    size = tuple(global_size) + (1,) * (3 - len(global_size))
    if local_size is None:
        block, budget = [], DEFAULT_BLOCK
        for extent, limit in zip(size, MAX_BLOCK):
            block.append(min(_power_of_two_at_least(extent), budget, limit))
            budget //= block[-1]
    else:
        block = list(local_size) + [1] * (3 - len(local_size))
    return tuple(-(-s // b) for s, b in zip(size, block)), tuple(block)
