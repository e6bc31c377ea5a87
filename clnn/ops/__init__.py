"""The layers: one module per operator, each a kernel that computes any box
of its output (see base.py), each declaring itself in the registry
(registry.py). The layer classes of every op module are exported here."""

from . import registry
from .base import Launch, Layer, Target
from .tuning import CpuBlocks, GemmTile, GemvShape, Tuning

globals().update(registry.layer_classes())

__all__ = ["CpuBlocks", "GemmTile", "GemvShape", "Launch", "Layer", "Target", "Tuning", "registry",
           *sorted(registry.layer_classes())]
