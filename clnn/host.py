"""Host arrays that devices can use in place.

A CPU device (and an integrated GPU) reads a buffer made over host memory
(OpenCL's USE_HOST_PTR, CUDA's registered memory) without a copy where that
memory starts on a page boundary; elsewhere the driver keeps a copy of its
own, which doubles the memory of every weight. Layers keep their constants,
and the executor its tensors, in such arrays.
"""

import numpy as np

PAGE = 4096


def aligned_empty(count, dtype=np.float32):
    """A flat array of ``count`` items on a page boundary, with at least 64
    bytes of slack after its end (drivers may read whole cache lines)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(count + (PAGE + 64) // itemsize, dtype=dtype)
    start = (-raw.ctypes.data % PAGE) // itemsize
    return raw[start:start + count]


def page_aligned(value, dtype=np.float32):
    """``value`` as a writable, C-contiguous array of ``dtype`` on a page
    boundary: the array itself where it already is one, else a copy."""
    value = np.asarray(value)
    if (value.dtype == dtype and value.flags.c_contiguous and value.flags.writeable
            and value.ctypes.data % PAGE == 0):
        return value
    found = aligned_empty(value.size, dtype).reshape(value.shape)
    found[...] = value  # straight from a strided view: no intermediate copy
    return found
