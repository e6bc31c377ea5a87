"""clnn: neural-network inference as OpenCL kernels on the CPU and the GPU at once."""

__version__ = "0.1.0"

import logging as _logging
import os as _os

if _os.environ.get("CLNN_DEBUG", "") not in ("", "0"):
    _handler = _logging.StreamHandler()
    _handler.setFormatter(_logging.Formatter("clnn: %(message)s"))
    _logging.getLogger("clnn").addHandler(_handler)
    _logging.getLogger("clnn").setLevel(_logging.DEBUG)

from . import models
from .errors import ClnnError, DeviceError, InputError, ModelError, PlanError
from .graph import Model
from .plan import Placement, Plan
from .runtime import Device, all_devices, select
from .session import InferenceSession


def load(model, batch=1):
    """A clnn.Model from an ONNX file path, its bytes or an onnx.ModelProto;
    ``batch`` fixes a symbolic batch dimension."""
    from .onnx_import import load as load_onnx
    return load_onnx(model, batch=batch)


def devices(selector=None):
    """Every device clnn can see, or those a selector picks (see API.md)."""
    return all_devices() if selector is None else select(selector)


__all__ = ["ClnnError", "Device", "DeviceError", "InferenceSession", "InputError", "Model", "ModelError",
           "Placement", "Plan", "PlanError", "devices", "load", "models", "select"]
