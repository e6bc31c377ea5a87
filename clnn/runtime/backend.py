"""What a backend (OpenCL, CUDA, ...) provides, and how backends are found.

A backend discovers devices and groups them into contexts. A context owns the
memory, compiled kernels and queues of its devices; the executor talks to
contexts only through the methods below, so a plugin backend runs the same
plans as the built-in OpenCL one.
"""

import abc
import logging
import threading
from importlib import metadata

log = logging.getLogger("clnn")

ENTRY_POINT_GROUP = "clnn.backends"
BUILTIN_BACKENDS = {"opencl": "clnn.runtime.opencl:OpenCLBackend"}


class Backend(abc.ABC):
    """Finds devices of one kind of driver and makes contexts for them."""

    name = ""

    @abc.abstractmethod
    def devices(self):
        """Every device this backend can use, as a list of clnn.Device."""

    @abc.abstractmethod
    def create_context(self, devices, memory="auto"):
        """A Context holding the given devices, which share one platform;
        ``memory`` ("auto", "unified" or "discrete") picks the memory path."""


class Context(abc.ABC):
    """Devices that share memory objects and kernels (one OpenCL context).

    ``unified`` is true where the devices work on host memory in place: such
    a context wraps each tensor's host copy and moves no data. Otherwise
    tensors stay resident in device buffers and regions are copied.
    """

    backend = ""
    devices = ()
    unified = False

    @abc.abstractmethod
    def queue(self, device):
        """The in-order, profiling queue of ``device``."""

    @abc.abstractmethod
    def alloc(self, nbytes, home=None):
        """A device buffer; with ``home`` (a host array) one that uses it in place."""

    @abc.abstractmethod
    def alloc_home(self, nbytes):
        """Host memory that this context copies fastest to and from (pinned),
        as a flat float32 numpy array, or None where plain memory is as good."""

    @abc.abstractmethod
    def upload(self, buffer, array):
        """Blocking copy of a whole host array into a buffer (weights)."""

    @abc.abstractmethod
    def kernel(self, source, name, options=()):
        """The compiled kernel ``name`` of kernels/<source>, built once per
        context and options, and reused."""

    @abc.abstractmethod
    def bind(self, source, name, options, args):
        """A launchable kernel with its arguments set once: a compiled run
        replays it without setting arguments again (setting them costs more
        than launching on small layers, and shared kernel objects could not
        be launched from two threads)."""

    @abc.abstractmethod
    def launch(self, queue, bound, global_size, local_size, wait_for):
        """Enqueue a bound kernel; returns its event."""

    @abc.abstractmethod
    def copy_box(self, queue, buffer, home, geometry, to_host, wait_for):
        """Copy a box of a tensor between its device buffer and its host copy.

        ``geometry`` is a clnn.box.Geometry (a 3-D strided region in bytes)."""

    @abc.abstractmethod
    def user_event(self):
        """An event of this context that the host completes by ``.complete()``."""

    @abc.abstractmethod
    def event_times(self, event):
        """(start, end) of a finished command in host perf_counter nanoseconds."""


_registry_lock = threading.Lock()
_backends = None


def _load(name, target):
    module_name, _, attr = target.partition(":")
    try:
        module = __import__(module_name, fromlist=[attr])
        return getattr(module, attr)()
    except Exception as exc:  # a broken plugin must not break import clnn
        log.warning("clnn backend %r unavailable: %s", name, exc)
        return None


def backends():
    """Every loadable backend: the built-in ones, then entry-point plugins."""
    global _backends
    with _registry_lock:
        if _backends is None:
            targets = dict(BUILTIN_BACKENDS)
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                targets.setdefault(ep.name, ep.value)
            loaded = {name: _load(name, t) for name, t in targets.items()}
            _backends = {n: b for n, b in loaded.items() if b is not None}
        return dict(_backends)
