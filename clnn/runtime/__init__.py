"""Devices, contexts, queues, kernels and memory: everything below the layers."""

from .backend import Backend, Context, backends
from .contexts import ContextPool, contexts_for, default_pool
from .device import Device
from .selector import all_devices, select

__all__ = ["Backend", "Context", "ContextPool", "Device", "all_devices", "backends", "contexts_for",
           "default_pool", "select"]
