"""The layers: one module per operator, each a kernel that computes any box
of its output (see base.py)."""

from .base import Layer, Profile
from .conv import Conv2d

__all__ = ["Conv2d", "Layer", "Profile"]
