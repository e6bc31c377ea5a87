"""clnn: neural-network inference as OpenCL kernels on the CPU and the GPU at once."""

import logging as _logging
import os as _os

from . import models
from .errors import ClnnError, DeviceError, InputError, ModelError, PlanError
from .model import Model
from .onnx_import import load as _load_onnx
from .plan import Placement, Plan
from .runtime import Device, all_devices, select
from .session import InferenceSession
from .version import __version__

if _os.environ.get("CLNN_DEBUG", "") not in ("", "0"):
    _handler = _logging.StreamHandler()
    _handler.setFormatter(_logging.Formatter("clnn: %(message)s"))
    _logging.getLogger("clnn").addHandler(_handler)
    _logging.getLogger("clnn").setLevel(_logging.DEBUG)


def load(model, batch=1):
    """A clnn.Model from an ONNX file path, its bytes or an onnx.ModelProto;
    ``batch`` fixes a symbolic batch dimension."""
    return _load_onnx(model, batch=batch)


def devices(selector=None):
    """Every device clnn can see, or those a selector picks (README, "Devices")."""
    return all_devices() if selector is None else select(selector)


__all__ = ["ClnnError", "Device", "DeviceError", "InferenceSession", "InputError", "Model", "ModelError",
           "Placement", "Plan", "PlanError", "__version__", "devices", "load", "models", "select"]
