"""What a backend (OpenCL, CUDA, ...) provides, and how backends are found.

A backend discovers devices and groups them into contexts. A context owns the
memory, compiled kernels and queues of its devices; the schedule and the
executor talk to contexts only through the methods of Context below, so a
plugin backend runs the same plans as the built-in OpenCL one. This module
and the registry are the only places that know which backends exist.
"""

import abc
import logging
import threading
import time
from importlib import metadata

from ..errors import DeviceError

log = logging.getLogger("clnn")

ENTRY_POINT_GROUP = "clnn.backends"
BUILTIN_BACKENDS = {"opencl": "clnn.runtime.opencl:OpenCLBackend"}


class Backend(abc.ABC):
    """Finds devices of one kind of driver (once, on first use) and makes
    contexts for them."""

    name = ""
    # where one physical device shows through several backends, the lowest
    # rank's is used (the built-in OpenCL backend before plugins)
    rank = 0

    def __init__(self):
        self._devices = None
        self._lock = threading.Lock()
        self.unavailable = None  # why there are no devices, for messages

    def devices(self):
        """Every device this backend can use, as a list of clnn.Device."""
        with self._lock:
            if self._devices is None:
                try:
                    self._devices = list(self._discover())
                except Exception as exc:  # no driver, no library, no device: no devices, no error
                    self.unavailable = f"{type(exc).__name__}: {exc}"
                    log.debug("%s backend: no devices: %s", self.name, self.unavailable)
                    self._devices = []
            return list(self._devices)

    @abc.abstractmethod
    def _discover(self):
        """The devices, found the first time they are asked for."""

    @abc.abstractmethod
    def create_context(self, devices, memory="auto"):
        """A Context holding the given devices, which share one platform;
        ``memory`` ("auto", "unified" or "discrete") picks the memory path."""

    # backends whose devices can run on a share of their compute units
    # (CUDA's green contexts) say so and override ``slice``
    can_slice = False

    def slice(self, device, count):
        """A clnn.Device that runs on ``count`` compute units of ``device``
        (at least: a driver may round up), with an id of its own made by
        clnn.runtime.selector.slice_id; DeviceError where it cannot."""
        raise DeviceError(f"{device} cannot run on a share of its compute units: only CUDA GPUs can "
                          "(green contexts), selected as cuda:sms=N")


class Context(abc.ABC):
    """Devices that share memory objects and kernels (one OpenCL context).

    ``unified`` is true where the devices work on host memory in place: such
    a context wraps each tensor's host copy and moves no data. Otherwise
    tensors stay resident in device buffers and regions are copied.

    Programs and kernels are built once per source and options and kept
    here; a backend says how to build (``_build``, ``_function``).
    """

    backend = ""

    def __init__(self, devices, unified):
        self.devices = tuple(devices)
        self.unified = bool(unified)
        self._programs = {}
        self._functions = {}
        self._build_lock = threading.Lock()

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(str(d) for d in self.devices)})"

    # kernels -------------------------------------------------------------------------
    def program(self, source, options=()):
        """kernels/<source>.cl built with ``options``, once per context."""
        key = (source, tuple(options))
        with self._build_lock:
            program = self._programs.get(key)
            if program is None:
                started = time.perf_counter()
                program = self._programs[key] = self._build(source, tuple(options))
                log.debug("built %s %s on %r in %.2f s", source, " ".join(options), self,
                          time.perf_counter() - started)
        return program

    def kernel(self, source, name, options=()):
        """The kernel ``name`` of kernels/<source>.cl, built once per context
        and options, and reused."""
        key = (source, tuple(options), name)
        function = self._functions.get(key)
        if function is None:
            program = self.program(source, options)
            with self._build_lock:
                function = self._functions.get(key)
                if function is None:
                    function = self._functions[key] = self._function(program, source, name)
        return function

    @abc.abstractmethod
    def _build(self, source, options):
        """A program of kernels/<source>.cl; DeviceError with the log on failure."""

    @abc.abstractmethod
    def _function(self, program, source, name):
        """The kernel ``name`` of a built program."""

    @abc.abstractmethod
    def bind(self, source, name, options, args):
        """A launchable kernel with its arguments set once: a compiled run
        replays it without setting arguments again (setting them costs more
        than launching on small layers, and shared kernel objects could not
        be launched from two threads)."""

    @abc.abstractmethod
    def launch(self, queue, bound, global_size, local_size, wait_for):
        """Enqueue a bound kernel; returns its event."""

    # queues and events -----------------------------------------------------------------
    @abc.abstractmethod
    def queue(self, device):
        """The in-order, profiling queue of ``device``."""

    @abc.abstractmethod
    def flush(self, device):
        """Submit what is enqueued on ``device``'s queue without waiting."""

    @abc.abstractmethod
    def finish(self, device):
        """Wait for everything enqueued on ``device``'s queue; raises if a
        command (or an event it waited for) failed."""

    @abc.abstractmethod
    def wait(self, event):
        """Wait for one event; raises if its command failed."""

    @abc.abstractmethod
    def user_event(self):
        """(event, settle): an event of this context that the host completes
        by ``settle(ok=True)``."""

    @abc.abstractmethod
    def event_times(self, event):
        """(start, end) of a finished command in host perf_counter nanoseconds."""

    def recorder(self, device, timed):
        """A Recording of a run on ``device``'s queue alone, which the
        schedule fills once and replays each run in one submission (CUDA
        graphs), or None where this backend cannot (the default): the run's
        commands are then enqueued one by one each time.

        A Recording has ``record(enqueue_all)``, which captures the commands
        that ``enqueue_all()`` enqueues (returning their events) without
        running them, and ``replay()``, which submits them and returns one
        event per command. ``timed``: event_times works on those events;
        otherwise they can only be waited for."""
        return None

    # memory ------------------------------------------------------------------------
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
    def copy_box(self, queue, buffer, home, geometry, to_host, wait_for):
        """Copy a box of a tensor between its device buffer and its host copy.

        ``geometry`` is a clnn.box.Geometry (a 3-D strided region in bytes)."""

    def close(self):
        """Finish every queue and drop compiled kernels; the context is not
        used afterwards."""
        for device in self.devices:
            try:
                self.finish(device)
            except Exception as exc:  # closing must not fail on a device that already did
                log.debug("finishing %s while closing: %s", device, exc)
        with self._build_lock:
            self._functions.clear()
            self._programs.clear()


_registry_lock = threading.Lock()
_backends = None


def _load(name, target):
    module_name, _, attr = target.partition(":")
    try:
        module = __import__(module_name, fromlist=[attr])
        return getattr(module, attr)()
    except ImportError as exc:  # its library is not installed (pyopencl on a Jetson): expected
        log.debug("clnn backend %r unavailable: %s", name, exc)
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
