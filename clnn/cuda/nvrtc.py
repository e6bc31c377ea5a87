"""OpenCL kernel sources translated to CUDA and compiled with NVRTC.

The translation is textual: kernels/clnn_cuda.h (which spells the OpenCL C
that kernels use in CUDA C++) followed by the kernel source. Build options
of the form -DNAME=VALUE mean the same to both compilers; OpenCL's -cl-*
options are mapped where CUDA has the same switch and dropped otherwise.

NVRTC runs in a child process (``build``): NVRTC and PoCL each carry an
LLVM, and with NVRTC's loaded first, PoCL's compiler crashed the process on
the GPU machine. A cubin is plain bytes, so nothing is lost by compiling
elsewhere.
"""

import base64
import functools
import json
import logging
import subprocess
import sys
import time

from ..errors import DeviceError
from .. import sources
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


@functools.lru_cache(maxsize=None)
def build(source, options, capability):
    """The loadable image (cubin or PTX) of kernels/<source>.cl built with
    OpenCL-style ``options`` (a tuple) for a device of compute capability
    ``capability`` (compiled in a child process, once per process: the
    contexts of a GPU and of its slices load the same image); DeviceError
    with NVRTC's log on failure."""
    request = {"name": source, "text": translate(source), "options": list(options),
               "capability": list(capability)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "clnn.cuda.nvrtc"], input=json.dumps(request),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise DeviceError(done.stderr.strip() or f"the NVRTC process for kernels/{source}.cl failed "
                          f"(exit status {done.returncode})")
    log.debug("compiled %s %s in %.2f s", source, " ".join(options), time.perf_counter() - started)
    return base64.b64decode(done.stdout)


def compile_here(name, text, options, capability):
    """NVRTC in this process: what the child process of ``build`` runs."""
    arch, cubin = target(capability)
    flags = [f"--gpu-architecture={arch}", *nvrtc_options(options)]
    program = call(rtc().nvrtcCreateProgram, text.encode(), f"{name}.cl".encode(), 0, [], [])
    try:
        try:
            call(rtc().nvrtcCompileProgram, program, len(flags), [f.encode() for f in flags])
        except CudaError as exc:
            raise DeviceError(f"compiling kernels/{name}.cl with options {list(options)} for CUDA ({arch}) "
                              f"failed:\n{_log(program)}") from exc
        return _image(program, cubin)
    finally:
        call(rtc().nvrtcDestroyProgram, program)


def _child():
    """Reads a build request on stdin, writes the image (base64) on stdout,
    or the error on stderr with exit status 1."""
    request = json.load(sys.stdin)
    try:
        image = compile_here(request["name"], request["text"], request["options"], tuple(request["capability"]))
    except Exception as exc:  # the parent reports it as a DeviceError
        sys.stderr.write(str(exc))
        return 1
    sys.stdout.write(base64.b64encode(image).decode())
    return 0


if __name__ == "__main__":
    sys.exit(_child())
