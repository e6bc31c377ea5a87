"""Finds the OpenCL C sources of kernels/ and expands their includes.

Installed, kernels/ is the data package clnn.kernels; in a source checkout
(PYTHONPATH pointing at it) it is the folder beside the package.
"""

import functools
import re
from importlib import resources
from pathlib import Path

from ..errors import DeviceError

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


@functools.lru_cache(maxsize=1)
def kernel_dir():
    try:
        folder = resources.files("clnn.kernels")
        if folder.is_dir():
            return Path(str(folder))
    except ModuleNotFoundError:
        pass
    folder = Path(__file__).resolve().parents[2] / "kernels"
    if not folder.is_dir():
        raise DeviceError(f"clnn's kernel sources are missing (looked in {folder})")
    return folder


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
