"""A CUDA context: one GPU (or a slice of its SMs), its primary context and
one stream, running the kernels of kernels/ compiled by NVRTC.

Memory is allocated in the device's primary context; kernels are loaded,
and the stream runs, in ``_ctx``: the primary context, or for a slice a
green context of its SMs (green.py)."""

import logging
import os
import threading

import numpy as np

from ..errors import DeviceError
from ..runtime.backend import Context
from . import nvrtc
from .driver import CudaError, Primary, call, cu
from .events import FlagPool, UserEvent
from .graph import Recording
from .green import GreenContext
from .launch import Bound, grid
from .memory import DeviceBuffer, MappedBuffer, copy_params, pinned_array
from .stream import Stream

log = logging.getLogger("clnn")


class CudaContext(Context):
    backend = "cuda"

    def __init__(self, devices, memory="auto"):
        if len(devices) != 1:
            raise DeviceError(f"a CUDA context holds one GPU, not {len(devices)}; give each its own with "
                              "contexts='device' (CLNN_CONTEXTS=device)")
        info = devices[0].handle
        if memory == "auto":
            unified = devices[0].unified_memory and info.maps_host_memory
        else:
            unified = memory == "unified"
            if unified and not info.maps_host_memory:
                raise DeviceError(f"{devices[0]} cannot use host memory in place (memory='unified')")
        super().__init__(devices, unified)
        self._info = info
        self._primary = Primary(self._info.device)
        self._ctx = self._primary if info.sms is None else GreenContext(self._primary, info, devices[0])
        self._stream = Stream(self._ctx)
        self._flags = None  # FlagPool once user events are needed, False where streams cannot wait on memory
        self._flags_lock = threading.Lock()
        log.debug("context %s: %s memory", devices[0], "unified (in place)" if self.unified
                  else "discrete (resident buffers, region copies)")

    def queue(self, device):
        return self._stream

    def flush(self, device):
        """Nothing to do: CUDA submits work as it is enqueued."""

    def finish(self, device):
        self._stream.finish()

    def wait(self, event):
        event.wait()

    # memory ------------------------------------------------------------------------
    def alloc(self, nbytes, home=None):
        try:
            if home is not None:
                return MappedBuffer(self._primary, home)
            return DeviceBuffer(self._primary, nbytes)
        except CudaError as exc:
            raise DeviceError(f"cannot allocate {nbytes} bytes on {self.devices[0]}: {exc}") from exc

    def alloc_home(self, nbytes):
        if self.unified:
            return None
        return pinned_array(self._primary, max(int(nbytes) // 4, 1))

    def upload(self, buffer, array):
        array = np.ascontiguousarray(array)
        # through the stream's lock, so that another thread's capture of a run
        # (graph.py) cannot take the copy in
        self._stream.enqueue((), lambda stream: call(cu().cuMemcpyHtoDAsync, buffer.ptr, array.ctypes.data,
                                                     array.nbytes, stream))
        self._stream.sync()  # the copy reads ``array`` until then

    def copy_box(self, queue, buffer, home, geometry, to_host, wait_for):
        params = copy_params(buffer.ptr, home.ctypes.data, geometry, to_host)
        return queue.enqueue(wait_for, lambda stream: call(cu().cuMemcpy3DAsync, params, stream))

    # kernels -----------------------------------------------------------------------
    def _build(self, source, options):
        image = nvrtc.build(source, options, self._info.capability)
        try:
            with self._ctx:
                return call(cu().cuModuleLoadData, image)
        except CudaError as exc:
            raise DeviceError(f"loading kernels/{source}.cl on {self.devices[0]} failed: {exc}") from exc

    def _function(self, module, source, name):
        try:
            with self._ctx:
                return call(cu().cuModuleGetFunction, module, name.encode())
        except CudaError as exc:
            raise DeviceError(f"kernels/{source}.cl has no kernel {name}: {exc}") from exc

    def bind(self, source, name, options, args):
        function = self.kernel(source, name, options)
        with self._ctx:
            return Bound(function, name, args)

    def launch(self, queue, bound, global_size, local_size, wait_for):
        blocks, threads = grid(global_size, local_size)
        return queue.enqueue(wait_for, lambda stream: call(
            cu().cuLaunchKernel, bound.function, *blocks, *threads, 0, stream, bound.params, 0))

    # events ------------------------------------------------------------------------
    def user_event(self):
        event = UserEvent(self._flag_pool())
        return event, event.settle

    def _flag_pool(self):
        """The FlagPool of this context, or None where its stream cannot wait
        on memory. CUDA 12 has no attribute for stream memory operations (v2,
        on by default), so one wait that is already satisfied tells."""
        with self._flags_lock:
            if self._flags is None:
                pool = FlagPool(self._primary)
                probe = UserEvent(pool)
                probe.settle()
                try:
                    self._stream.enqueue([probe], lambda handle: None)  # the wait alone
                    self._flags = pool
                except CudaError as exc:
                    log.debug("%s: user events block the enqueuing thread (%s)", self.devices[0], exc)
                    self._flags = False
            return self._flags or None

    def event_times(self, event):
        return self._stream.times(event)

    def recorder(self, device, timed):
        """Runs on this context's one stream replay as CUDA graphs, unless
        CLNN_CUDA_GRAPHS=0 or a capture failed here before."""
        if os.environ.get("CLNN_CUDA_GRAPHS", "").strip() == "0" or self._stream.capture_failure is not None:
            return None
        return Recording(self._stream, timed)
