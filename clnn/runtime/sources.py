"""Finds the OpenCL C sources of kernels/ and expands their includes.

Installed, kernels/ is the data package clnn/kernels; in a source checkout
(PYTHONPATH pointing at it) it is the folder beside the package.
"""

import functools
import re
from pathlib import Path

from ..errors import DeviceError

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


@functools.lru_cache(maxsize=1)
def kernel_dir():
    package = Path(__file__).resolve().parents[1]
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
