"""clnn: neural-network inference as OpenCL kernels on the CPU and the GPU at once."""

import logging as _logging
import os as _os

from . import log as _log
from . import models
from .errors import ClnnError, DeviceError, InputError, ModelError, PlanError
from .model import Model
from .onnx_import import load as _load_onnx
from .plan import Placement, Plan
from .runtime import Device, all_devices, select
from .graph import TensorInfo as NodeArg
from .session import InferenceSession
from .session_options import (ExecutionMode, GraphOptimizationLevel, ModelMetadata, RunOptions, SessionOptions,
                              get_available_providers)
from .version import __version__

if _os.environ.get("CLNN_DEBUG", "") not in ("", "0"):
    _log.show(_logging.DEBUG)


def load(model, batch=1, fuse=True):
    """A clnn.Model from an ONNX file path, its bytes or an onnx.ModelProto;
    ``batch`` fixes a symbolic batch dimension; ``fuse=False`` keeps every
    node a layer of its own (no fusion passes)."""
    return _load_onnx(model, batch=batch, fuse=fuse)


def devices(selector=None):
    """Every device clnn can see, or those a selector picks (README, "Devices")."""
    return all_devices() if selector is None else select(selector)


__all__ = ["ClnnError", "Device", "DeviceError", "ExecutionMode", "GraphOptimizationLevel", "InferenceSession",
           "InputError", "Model", "ModelError", "ModelMetadata", "NodeArg", "Placement", "Plan", "PlanError",
           "RunOptions", "SessionOptions", "__version__", "devices", "get_available_providers", "load", "models",
           "select"]
