"""The CUDA backend plugin: the kernels of kernels/ translated to CUDA and
compiled by NVRTC, run on NVIDIA GPUs through the driver API (cuda-python).

It is for GPUs without an OpenCL driver (Jetson boards); where a GPU has
both, device selection keeps the OpenCL one unless ``cuda`` is named. It
registers itself as the entry point ``cuda`` of ``clnn.backends``, and
imports cuda-python only when asked for devices: without it, or without a
driver or a GPU, it finds no devices and ``import clnn`` works as before.
"""

from .backend import CudaBackend

__all__ = ["CudaBackend"]
