"""The op registry: every module of clnn.ops declares one entry, ``OP``,
naming the layers it defines, the ONNX op types it reads and the kernel
sources its launches use. Adding an op is adding one module (and its
kernels/*.cl): nothing else lists ops. Writing ONNX is each layer's own
``to_onnx``.
"""

import importlib
import pkgutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OpEntry:
    layers: tuple                              # the Layer classes the module defines
    onnx: dict = field(default_factory=dict)   # ONNX op type -> converter(node)
    sources: tuple = ()                        # kernels/<source>.cl its launches use


# modules that serve the op modules: the layer base, this registry, kernel
# parameters (tuning), the GPU GEMM's work-group plan, Winograd's launches,
# the CPU convolutions' choice and launches (dense and depthwise)
_NOT_OPS = {"base", "registry", "tuning", "gemm", "winograd", "conv_cpu", "conv_depthwise"}
_entries = None


def entries():
    """{module name: OpEntry} of every op module of clnn.ops."""
    global _entries
    if _entries is None:
        package = importlib.import_module(__package__)
        found = {}
        for info in pkgutil.iter_modules(package.__path__):
            if info.name not in _NOT_OPS:
                found[info.name] = importlib.import_module(f"{__package__}.{info.name}").OP
        _entries = found
    return dict(_entries)


def onnx_converters():
    """{ONNX op type: converter} over every op module; an op type claimed
    twice is a mistake in clnn."""
    found = {}
    for module, entry in entries().items():
        for op_type, convert in entry.onnx.items():
            if op_type in found:
                raise RuntimeError(f"ONNX op {op_type} is claimed by two op modules ({module} and another)")
            found[op_type] = convert
    return found


def layer_classes():
    """{class name: Layer class} over every op module."""
    return {cls.__name__: cls for entry in entries().values() for cls in entry.layers}
