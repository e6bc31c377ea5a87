"""The CUDA backend: NVIDIA GPUs through the driver API, for machines whose
GPU has no OpenCL driver (Jetson boards)."""

import logging
import threading
from dataclasses import dataclass

from ..runtime.backend import Backend
from ..runtime.device import Device
from .context import CudaContext
from .driver import attribute, call, cu

log = logging.getLogger("clnn")


@dataclass(frozen=True)
class DeviceInfo:
    """A CUDA device's handle: what contexts and kernels need to know of it.
    ``local_mem_size`` and ``max_work_group_size`` carry OpenCL's names
    because kernel profiles read them (clnn.ops.base.Profile)."""

    device: object              # CUdevice
    ordinal: int
    capability: tuple           # (major, minor): NVRTC's target
    local_mem_size: int
    max_work_group_size: int
    maps_host_memory: bool      # can run on registered host memory in place


def _version(encoded):
    """(major, minor) of a CUDA version number such as 12090."""
    return encoded // 1000, encoded % 1000 // 10


def _device(ordinal, version):
    dev = call(cu().cuDeviceGet, ordinal)
    name = call(cu().cuDeviceGetName, 256, dev).split(b"\0")[0].decode(errors="replace").strip()
    info = DeviceInfo(
        device=dev, ordinal=ordinal,
        capability=(attribute(dev, "COMPUTE_CAPABILITY_MAJOR"), attribute(dev, "COMPUTE_CAPABILITY_MINOR")),
        local_mem_size=attribute(dev, "MAX_SHARED_MEMORY_PER_BLOCK"),
        max_work_group_size=attribute(dev, "MAX_THREADS_PER_BLOCK"),
        maps_host_memory=bool(attribute(dev, "HOST_REGISTER_SUPPORTED") and attribute(dev, "CAN_MAP_HOST_MEMORY")))
    # the PCI address as the OpenCL backend spells it, so that a GPU that
    # both drivers show is used once
    identity = (f"pci:{attribute(dev, 'PCI_DOMAIN_ID'):04x}:{attribute(dev, 'PCI_BUS_ID'):02x}:"
                f"{attribute(dev, 'PCI_DEVICE_ID'):02x}")
    return Device(
        id=f"cuda:cuda:{ordinal}", name=name, kind="gpu", platform="CUDA", backend=CudaBackend.name,
        unified_memory=bool(attribute(dev, "INTEGRATED")),
        compute_units=attribute(dev, "MULTIPROCESSOR_COUNT"),
        driver_version="CUDA {}.{}".format(*version), identity=identity, handle=info,
        platform_version=version)


def _discover():
    call(cu().cuInit, 0)
    version = _version(call(cu().cuDriverGetVersion))
    return [_device(ordinal, version) for ordinal in range(call(cu().cuDeviceGetCount))]


class CudaBackend(Backend):
    name = "cuda"

    def __init__(self):
        self._devices = None
        # why there are no devices, for messages (None while there are)
        self.unavailable = None
        self._lock = threading.Lock()

    def devices(self):
        with self._lock:
            if self._devices is None:
                try:
                    self._devices = _discover()
                except Exception as exc:  # no cuda-python, no libcuda, no GPU: no devices, no error
                    self.unavailable = f"{type(exc).__name__}: {exc}"
                    log.debug("no CUDA devices: %s", self.unavailable)
                    self._devices = []
                if not self._devices and self.unavailable is None:
                    self.unavailable = "the CUDA driver reports no device"
            return list(self._devices)

    def create_context(self, devices, memory="auto"):
        return CudaContext(devices, memory)
