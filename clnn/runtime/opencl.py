"""The built-in OpenCL backend, on pyopencl."""

import logging
import re
import time

import numpy as np
import pyopencl as cl

from ..errors import DeviceError
from ..sources import load_source
from .backend import Backend, Context
from .device import Device
from .pocl_threads import pin_pocl_threads

log = logging.getLogger("clnn")

# Platforms that simulate a device rather than drive one: only used when a
# selector names them (tox -e oclgrind does).
SIMULATOR_PLATFORMS = ("oclgrind",)

_PROFILING = cl.command_queue_properties.PROFILING_ENABLE
_mf = cl.mem_flags


def _kind(cl_type):
    if cl_type & cl.device_type.GPU and not cl_type & cl.device_type.CPU:
        return "gpu"
    if cl_type & cl.device_type.CPU and not cl_type & cl.device_type.GPU:
        return "cpu"
    return "accelerator"


def _numbers(text):
    return tuple(int(x) for x in re.findall(r"\d+", text))


def _slug(platform_name):
    word = platform_name.split()[0] if platform_name.split() else "platform"
    return re.sub(r"[^a-z0-9]", "", word.lower()) or "platform"


def _identity(device, kind, platform_slug):
    """A name of the physical device, equal for one device seen through two
    drivers: the host CPU, a GPU's PCI address, else the platform's own."""
    if platform_slug in SIMULATOR_PLATFORMS:
        return f"sim:{platform_slug}"
    if kind == "cpu":
        return "cpu"
    try:
        bus = device.get_info(cl.device_info.PCI_BUS_ID_NV)
        slot = device.get_info(cl.device_info.PCI_SLOT_ID_NV)
        try:
            domain = device.get_info(cl.device_info.PCI_DOMAIN_ID_NV)
        except cl.Error:
            domain = 0
        return f"pci:{domain:04x}:{bus:02x}:{slot >> 3:02x}"
    except (cl.Error, AttributeError):
        return f"{platform_slug}:{device.name}"


def _unified(device, kind):
    try:
        return bool(device.host_unified_memory)
    except cl.Error:  # queried away in some OpenCL 3 drivers
        return kind == "cpu"


class OpenCLBackend(Backend):
    name = "opencl"

    def _discover(self):
        pin_pocl_threads()  # before the first platform query, where PoCL reads it
        try:
            platforms = cl.get_platforms()
        except cl.Error as exc:  # no ICD loader entries at all
            log.debug("no OpenCL platforms: %s", exc)
            return []
        found, used_slugs = [], {}
        for platform in sorted(platforms, key=lambda p: (p.name, p.version)):
            slug = _slug(platform.name)
            used_slugs[slug] = used_slugs.get(slug, 0) + 1
            if used_slugs[slug] > 1:
                slug = f"{slug}-{used_slugs[slug]}"
            try:
                cl_devices = platform.get_devices()
            except cl.Error:
                continue
            for index, d in enumerate(cl_devices):
                kind = _kind(d.type)
                found.append(Device(
                    id=f"opencl:{slug}:{index}", name=d.name.strip(), kind=kind,
                    platform=platform.name.strip(), backend=self.name,
                    unified_memory=_unified(d, kind), compute_units=d.max_compute_units,
                    driver_version=d.driver_version, local_mem_size=int(d.local_mem_size),
                    max_work_group_size=int(d.max_work_group_size),
                    native_vector_width=int(d.native_vector_width_float),
                    simulator=_slug(platform.name) in SIMULATOR_PLATFORMS,
                    identity=_identity(d, kind, _slug(platform.name)),
                    handle=d, platform_version=_numbers(platform.version)))
        return found

    def create_context(self, devices, memory="auto"):
        return OpenCLContext(devices, memory)


class OpenCLContext(Context):
    backend = "opencl"

    def __init__(self, devices, memory="auto"):
        unified = all(d.unified_memory for d in devices) if memory == "auto" else memory == "unified"
        super().__init__(devices, unified)
        try:
            self.cl = cl.Context([d.handle for d in self.devices])
            self._queues = {d.id: cl.CommandQueue(self.cl, d.handle, properties=_PROFILING)
                            for d in self.devices}
        except cl.Error as exc:
            raise DeviceError(f"cannot open an OpenCL context on {_names(self.devices)}: {exc}") from exc
        self._clock_offsets = {}
        log.debug("context %s: %s memory", _names(self.devices), "unified (in place)" if self.unified
                  else "discrete (resident buffers, region copies)")

    def queue(self, device):
        return self._queues[device.id]

    def flush(self, device):
        self._queues[device.id].flush()

    def finish(self, device):
        self._queues[device.id].finish()

    def wait(self, event):
        event.wait()

    def alloc(self, nbytes, home=None):
        try:
            if home is not None:
                return cl.Buffer(self.cl, _mf.READ_WRITE | _mf.USE_HOST_PTR, hostbuf=home)
            return cl.Buffer(self.cl, _mf.READ_WRITE, size=max(int(nbytes), 4))
        except cl.Error as exc:
            raise DeviceError(f"cannot allocate {nbytes} bytes on {_names(self.devices)}: {exc}") from exc

    def alloc_home(self, nbytes):
        if self.unified:
            return None
        # An ALLOC_HOST_PTR buffer mapped once is pinned memory that this
        # driver copies to and from at full speed; the map stays for the
        # array's lifetime and the buffer itself is never used by kernels.
        count = max(int(nbytes) // 4, 1)
        staging = cl.Buffer(self.cl, _mf.READ_WRITE | _mf.ALLOC_HOST_PTR, size=count * 4)
        array, _ = cl.enqueue_map_buffer(self._queues[self.devices[0].id], staging,
                                         cl.map_flags.READ | cl.map_flags.WRITE, 0, (count,),
                                         np.float32, is_blocking=True)
        return array

    def upload(self, buffer, array):
        cl.enqueue_copy(self._queues[self.devices[0].id], buffer,
                        np.ascontiguousarray(array), is_blocking=True)

    def _build(self, source, options):
        if any(d.simulator for d in self.devices):
            options = (*options, "-DCLNN_NO_PREFETCH")   # Oclgrind cannot run prefetch hints
        try:
            return cl.Program(self.cl, load_source(source)).build(options=list(options))
        except cl.Error as exc:
            raise DeviceError(f"building kernels/{source}.cl with options {list(options)} failed on "
                              f"{_names(self.devices)}:\n{exc}") from exc

    def _function(self, program, source, name):
        try:
            return cl.Kernel(program, name)
        except cl.Error as exc:
            raise DeviceError(f"kernels/{source}.cl has no kernel {name}: {exc}") from exc

    def bind(self, source, name, options, args):
        bound = cl.Kernel(self.program(source, options), name)
        try:
            bound.set_args(*args)
        except cl.Error as exc:
            raise DeviceError(f"setting the arguments of {name} on {_names(self.devices)} failed: {exc}") from exc
        return bound

    def launch(self, queue, bound, global_size, local_size, wait_for):
        return cl.enqueue_nd_range_kernel(queue, bound, global_size, local_size, wait_for=wait_for or None)

    def copy_box(self, queue, buffer, home, geometry, to_host, wait_for):
        pitches = (geometry.row_pitch, geometry.slice_pitch)
        dst, src = (home, buffer) if to_host else (buffer, home)
        return cl.enqueue_copy(queue, dst, src, buffer_origin=geometry.origin,
                               host_origin=geometry.origin, region=geometry.region,
                               buffer_pitches=pitches, host_pitches=pitches,
                               is_blocking=False, wait_for=wait_for or None)

    def user_event(self):
        event = cl.UserEvent(self.cl)

        def settle(ok=True):
            event.set_status(cl.command_execution_status.COMPLETE if ok else -1)

        return event, settle

    def event_times(self, event):
        offset = self._clock_offset(event.command_queue)
        return event.profile.start + offset, event.profile.end + offset

    def _clock_offset(self, queue):
        """Host perf_counter_ns minus the device's profiling clock, taken from
        a marker's queued time against the host time of its enqueue."""
        key = queue.int_ptr
        if key not in self._clock_offsets:
            samples = []
            for _ in range(5):
                before = time.perf_counter_ns()
                marker = cl.enqueue_marker(queue)
                after = time.perf_counter_ns()
                marker.wait()
                samples.append((before + after) // 2 - marker.profile.queued)
            self._clock_offsets[key] = int(np.median(samples))
        return self._clock_offsets[key]


def _names(devices):
    return ", ".join(str(d) for d in devices)
