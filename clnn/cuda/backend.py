"""The CUDA backend: NVIDIA GPUs through the driver API, for machines whose
GPU has no OpenCL driver (Jetson boards)."""

from dataclasses import dataclass

from ..runtime.backend import Backend
from ..runtime.device import Device
from .context import CudaContext
from .driver import attribute, call, cu
from .green import slice_device

@dataclass(frozen=True)
class DeviceInfo:
    """A CUDA device's handle: what this backend's contexts need of it."""

    device: object              # CUdevice
    ordinal: int
    capability: tuple           # (major, minor): NVRTC's target
    maps_host_memory: bool      # can run on registered host memory in place
    sms: int = None             # a slice's SMs (green.py), None for the whole GPU


def _version(encoded):
    """(major, minor) of a CUDA version number such as 12090."""
    return encoded // 1000, encoded % 1000 // 10


def _device(ordinal, version):
    dev = call(cu().cuDeviceGet, ordinal)
    name = call(cu().cuDeviceGetName, 256, dev).split(b"\0")[0].decode(errors="replace").strip()
    info = DeviceInfo(
        device=dev, ordinal=ordinal,
        capability=(attribute(dev, "COMPUTE_CAPABILITY_MAJOR"), attribute(dev, "COMPUTE_CAPABILITY_MINOR")),
        maps_host_memory=bool(attribute(dev, "HOST_REGISTER_SUPPORTED") and attribute(dev, "CAN_MAP_HOST_MEMORY")))
    # the PCI address as the OpenCL backend spells it, so that a GPU that
    # both drivers show is used once
    identity = (f"pci:{attribute(dev, 'PCI_DOMAIN_ID'):04x}:{attribute(dev, 'PCI_BUS_ID'):02x}:"
                f"{attribute(dev, 'PCI_DEVICE_ID'):02x}")
    return Device(
        id=f"cuda:cuda:{ordinal}", name=name, kind="gpu", platform="CUDA", backend=CudaBackend.name,
        unified_memory=bool(attribute(dev, "INTEGRATED")),
        compute_units=attribute(dev, "MULTIPROCESSOR_COUNT"),
        driver_version="CUDA {}.{}".format(*version),
        local_mem_size=attribute(dev, "MAX_SHARED_MEMORY_PER_BLOCK"),
        max_work_group_size=attribute(dev, "MAX_THREADS_PER_BLOCK"), identity=identity, handle=info,
        platform_version=version)


def _discover():
    call(cu().cuInit, 0)
    version = _version(call(cu().cuDriverGetVersion))
    return [_device(ordinal, version) for ordinal in range(call(cu().cuDeviceGetCount))]


class CudaBackend(Backend):
    name = "cuda"
    rank = 1  # where a GPU also has an OpenCL driver, that one is used unless cuda is named

    def __init__(self):
        super().__init__()
        self._slices = {}  # (device id, SMs asked for): Device

    def _discover(self):
        found = _discover()
        if not found:
            self.unavailable = "the CUDA driver reports no device"
        return found

    def create_context(self, devices, memory="auto"):
        return CudaContext(devices, memory)

    can_slice = True

    def slice(self, device, count):
        """A slice of ``count`` SMs of a GPU (rounded up to what the driver
        grants), the same Device each time it is asked for."""
        with self._lock:
            wanted = (device.id, count)
            if wanted not in self._slices:
                self._slices[wanted] = slice_device(device, count)
            return self._slices[wanted]
