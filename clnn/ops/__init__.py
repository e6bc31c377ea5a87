"""The layers: one module per operator, each a kernel that computes any box
of its output (see base.py)."""

from .base import Layer, Profile
from .concat import Concat
from .conv import Conv2d
from .dense import Dense
from .eltwise import Activation, Binary, Copy, ScaleShift
from .lrn import LRN
from .pool import Pool
from .reshape import Reshape
from .softmax import Softmax

__all__ = ["LRN", "Activation", "Binary", "Concat", "Conv2d", "Copy", "Dense", "Layer", "Pool", "Profile",
           "Reshape", "ScaleShift", "Softmax"]
