"""The OpenCL C sources of kernels/, and each kernel's named signature.

Installed, kernels/ is the data package clnn/kernels; in a source checkout
(PYTHONPATH pointing at it) it is the folder beside the package.

A kernel's parameter list in its source is the one place that says which
arguments it takes, in which order and of which type. ``signature`` reads
it, so that layers name their arguments (``{"out": OUT, "H": 7, ...}``) and
the order, count and types are checked against the kernel itself.
"""

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DeviceError

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)
_KERNEL = re.compile(r"__kernel\s+(?:CLNN_WORK_GROUP\s*\([^)]*\)\s*)?void\s+(\w+)\s*\(((?:[^()]|\([^()]*\))*)\)")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


@functools.lru_cache(maxsize=1)
def kernel_dir():
    package = Path(__file__).resolve().parent
    candidates = (package / "kernels", package.parent / "kernels")
    for folder in candidates:
        if (folder / "clnn_common.h").is_file():
            return folder
    raise DeviceError(f"clnn's kernel sources are missing (looked in {', '.join(map(str, candidates))})")


def source_names():
    """Names of every kernel source file (without .cl)."""
    return sorted(p.stem for p in kernel_dir().glob("*.cl"))


@functools.lru_cache(maxsize=None)
def load_source(name):
    """The text of kernels/<name>.cl with its quoted includes inlined once."""
    seen = set()

    def expand(filename):
        path = kernel_dir() / filename
        if not path.is_file():
            raise DeviceError(f"kernel source {filename!r} not found in {kernel_dir()}")
        text = path.read_text()

        def include(match):
            target = match.group(1)
            if target in seen:
                return ""
            seen.add(target)
            return expand(target)

        return _INCLUDE.sub(include, text)

    return expand(f"{name}.cl")


# signatures ---------------------------------------------------------------------

TENSOR, BUFFER, INT, FLOAT = "tensor", "buffer", "int", "float"


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str       # TENSOR (buffer, offset, batch stride), BUFFER, INT or FLOAT


@dataclass(frozen=True)
class Signature:
    kernel: str
    source: str     # kernels/<source>.cl
    parameters: tuple

    @property
    def names(self):
        return [p.name for p in self.parameters]

    def flat(self, args, tensor=lambda value: value, buffer=lambda value: value):
        """The kernel's argument list from ``args`` ({parameter name:
        value}), in the kernel's order: ints and floats as numpy int32 and
        float32, tensor values expanded by ``tensor(value)`` into (buffer,
        element offset, batch stride), buffer values mapped by
        ``buffer(value)``. DeviceError naming what is missing, unknown or of
        the wrong kind."""
        missing = [n for n in self.names if n not in args]
        unknown = [n for n in args if n not in self.names]
        if missing or unknown:
            raise DeviceError(f"{self.kernel} (kernels/{self.source}.cl) takes {self.names}; "
                              f"missing {missing}, unknown {unknown}")
        found = []
        for p in self.parameters:
            value = args[p.name]
            number = isinstance(value, (int, float, np.integer, np.floating))
            if p.kind == INT and isinstance(value, (int, np.integer)):
                found.append(np.int32(value))
            elif p.kind == FLOAT and number:
                found.append(np.float32(value))
            elif p.kind == TENSOR and not number:
                found.extend(tensor(value))
            elif p.kind == BUFFER and not number:
                found.append(buffer(value))
            else:
                raise DeviceError(f"{self.kernel}: {p.name} takes a {p.kind}, not {value!r}")
        return found


def _parameter(text, kernel):
    text = " ".join(text.split())
    match = re.fullmatch(r"CLNN_C?TENSOR\((\w+)\)", text)
    if match:
        return Parameter(match.group(1), TENSOR)
    name = re.findall(r"\w+", text)[-1]
    if "*" in text:
        return Parameter(name, BUFFER)
    if re.search(r"\bint\b", text):
        return Parameter(name, INT)
    if re.search(r"\bfloat\b", text):
        return Parameter(name, FLOAT)
    raise DeviceError(f"{kernel}: cannot read parameter {text!r}")


@functools.lru_cache(maxsize=1)
def signatures():
    """{kernel name: Signature} of every kernel in kernels/."""
    found = {}
    for source in source_names():
        text = _COMMENT.sub(" ", (kernel_dir() / f"{source}.cl").read_text())
        for name, params in _KERNEL.findall(text):
            if name in found:
                raise DeviceError(f"kernel {name} is defined in kernels/{found[name].source}.cl and {source}.cl")
            parts = [p for p in params.split(",") if p.strip()]
            found[name] = Signature(name, source, tuple(_parameter(p, name) for p in parts))
    return found


def signature(kernel):
    """The Signature of ``kernel``; DeviceError if no source defines it."""
    try:
        return signatures()[kernel]
    except KeyError:
        raise DeviceError(f"no kernel named {kernel} in {kernel_dir()}") from None
