"""OpenCL kernel sources translated to CUDA and compiled with NVRTC.

The translation is textual: kernels/clnn_cuda.h (which spells the OpenCL C
that kernels use in CUDA C++) followed by the kernel source. Build options
of the form -DNAME=VALUE mean the same to both compilers; OpenCL's -cl-*
options are mapped where CUDA has the same switch and dropped otherwise.
"""

import functools
import logging
import time

from ..errors import DeviceError
from ..runtime import sources
from .driver import CudaError, call, rtc

log = logging.getLogger("clnn")

HEADER = "clnn_cuda.h"

# OpenCL options with a CUDA equivalent; other -cl-* options only permit
# optimisations and are dropped (NVRTC contracts to FMA by default).
CL_OPTIONS = {
    "-cl-mad-enable": "--fmad=true",
    "-cl-fast-relaxed-math": "--use_fast_math",
    "-cl-denorms-are-zero": "--ftz=true",
}


def translate(source):
    """The CUDA C++ text of kernels/<source>.cl."""
    header = (sources.kernel_dir() / HEADER).read_text()
    # the #line makes NVRTC's messages count lines of the (expanded) source
    return f'{header}\n#line 1 "{source}.cl"\n{sources.load_source(source)}'


def nvrtc_options(options):
    mapped = []
    for option in options:
        if option.startswith("-cl-"):
            if option in CL_OPTIONS:
                mapped.append(CL_OPTIONS[option])
        else:
            mapped.append(option)
    return mapped


@functools.lru_cache(maxsize=None)
def supported_architectures():
    return tuple(call(rtc().nvrtcGetSupportedArchs))


def target(capability):
    """(--gpu-architecture value, True for a cubin) for a device of compute
    capability (major, minor). A cubin of the device's own architecture
    needs no JIT and loads on drivers older than this NVRTC; a device newer
    than NVRTC knows gets PTX of the newest architecture below it, which
    the driver compiles."""
    wanted = capability[0] * 10 + capability[1]
    if wanted in supported_architectures():
        return f"sm_{wanted}", True
    below = [a for a in supported_architectures() if a < wanted]
    if not below:
        raise DeviceError(f"this NVRTC cannot compile for compute capability {capability[0]}.{capability[1]} "
                          f"(it knows {', '.join(map(str, supported_architectures()))})")
    return f"compute_{max(below)}", False


def _log(program):
    size = call(rtc().nvrtcGetProgramLogSize, program)
    text = b" " * size
    call(rtc().nvrtcGetProgramLog, program, text)
    return text.rstrip(b"\0").decode(errors="replace").strip()


def _image(program, cubin):
    get_size, get = ((rtc().nvrtcGetCUBINSize, rtc().nvrtcGetCUBIN) if cubin
                     else (rtc().nvrtcGetPTXSize, rtc().nvrtcGetPTX))
    image = b" " * call(get_size, program)
    call(get, program, image)
    return image  # PTX comes NUL-terminated, as cuModuleLoadData wants it


def build(source, options, capability):
    """The loadable image (cubin or PTX) of kernels/<source>.cl built with
    OpenCL-style ``options`` for a device of compute capability ``capability``;
    DeviceError with NVRTC's log on failure."""
    arch, cubin = target(capability)
    flags = [f"--gpu-architecture={arch}", *nvrtc_options(options)]
    started = time.perf_counter()
    program = call(rtc().nvrtcCreateProgram, translate(source).encode(), f"{source}.cl".encode(), 0, [], [])
    try:
        try:
            call(rtc().nvrtcCompileProgram, program, len(flags), [f.encode() for f in flags])
        except CudaError as exc:
            raise DeviceError(f"compiling kernels/{source}.cl with options {list(options)} for CUDA ({arch}) "
                              f"failed:\n{_log(program)}") from exc
        warnings = _log(program)
        if warnings:
            log.debug("NVRTC on %s %s: %s", source, " ".join(flags), warnings)
        image = _image(program, cubin)
    finally:
        call(rtc().nvrtcDestroyProgram, program)
    log.debug("compiled %s %s in %.2f s", source, " ".join(flags), time.perf_counter() - started)
    return image
