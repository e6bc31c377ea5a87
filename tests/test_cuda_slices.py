"""GPU slices (cuda:sms=N) without a GPU: the selector's spelling, the slice's
device (id, compute units, calibration key), and the green-context calls
against a stand-in for the CUDA driver, including drivers that cannot. The
same on a real GPU is in test_cuda.py."""

import dataclasses
import enum
import logging

import pytest

import clnn
from clnn.cache_files import device_key
from clnn.cuda import green
from clnn.cuda.backend import CudaBackend, DeviceInfo
from clnn.runtime import selector
from clnn.runtime.backend import Backend
from clnn.runtime.device import Device


class Status(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1
    CUDA_ERROR_NOT_SUPPORTED = 801


@dataclasses.dataclass
class _Sm:
    smCount: int


@dataclasses.dataclass
class _Resource:
    sm: _Sm


class FakeDriver:
    """The driver calls green.py makes, splitting SMs in steps of ``step``
    as an H100/H200 does (8)."""

    class CUdevResourceType:
        CU_DEV_RESOURCE_TYPE_SM = 1

    class CUgreenCtxCreate_flags:
        CU_GREEN_CTX_DEFAULT_STREAM = 1

    def __init__(self, sms=132, step=8, failing=None):
        self.sms, self.step, self.failing = sms, step, failing
        self.calls = []
        self.current = []  # the context stack of the calling thread

    def _result(self, name, *values):
        self.calls.append(name)
        if name == self.failing:
            return (Status.CUDA_ERROR_NOT_SUPPORTED,)
        return (Status.CUDA_SUCCESS, *values)

    def cuDeviceGetDevResource(self, device, kind):
        assert kind == self.CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM
        return self._result("cuDeviceGetDevResource", _Resource(_Sm(self.sms)))

    def cuDevSmResourceSplitByCount(self, groups, resource, flags, count):
        assert (groups, flags) == (1, 0)
        granted = -(-count // self.step) * self.step
        if granted > resource.sm.smCount:
            return self._result("cuDevSmResourceSplitByCount", [], 0, resource)
        return self._result("cuDevSmResourceSplitByCount", [_Resource(_Sm(granted))], 1,
                            _Resource(_Sm(resource.sm.smCount - granted)))

    def cuDevResourceGenerateDesc(self, resources, count):
        assert count == len(resources) == 1
        return self._result("cuDevResourceGenerateDesc", ("desc", resources[0].sm.smCount))

    def cuGreenCtxCreate(self, desc, device, flags):
        assert flags == 1 and self.current == ["primary"]  # made with the primary context current
        return self._result("cuGreenCtxCreate", ("green", desc[1]))

    def cuCtxFromGreenCtx(self, green_ctx):
        return self._result("cuCtxFromGreenCtx", ("ctx", green_ctx[1]))

    def cuGreenCtxDestroy(self, green_ctx):
        return self._result("cuGreenCtxDestroy")

    def cuCtxPushCurrent(self, handle):
        self.current.append(handle)
        return self._result("cuCtxPushCurrent")

    def cuCtxPopCurrent(self):
        self.current.pop()
        return self._result("cuCtxPopCurrent", None)


class FakePrimary:
    """driver.Primary's interface over FakeDriver."""

    def __init__(self, driver):
        self.driver, self.waits = driver, self

    def __enter__(self):
        self.driver.cuCtxPushCurrent("primary")
        return self

    def __exit__(self, *exc):
        self.driver.cuCtxPopCurrent()


def _gpu(sms=132, version=(13, 0), ordinal=0):
    return Device(id=f"cuda:cuda:{ordinal}", name="NVIDIA H200", kind="gpu", platform="CUDA", backend="cuda",
                  unified_memory=False, compute_units=sms, driver_version="CUDA {}.{}".format(*version),
                  identity=f"pci:0000:1b:0{ordinal}", platform_version=version,
                  handle=DeviceInfo(device=ordinal, ordinal=ordinal, capability=(9, 0), maps_host_memory=True))


def _cpu():
    return Device(id="opencl:portable:0", name="cpu", kind="cpu", platform="Portable Computing Language",
                  backend="opencl", unified_memory=True, compute_units=16, identity="cpu")


def _gpu_through_opencl():
    return Device(id="opencl:nvidia:0", name="NVIDIA H200", kind="gpu", platform="NVIDIA CUDA", backend="opencl",
                  unified_memory=False, compute_units=132, identity="pci:0000:1b:00", platform_version=(3, 0))


class _OpenCL(Backend):
    name = "opencl"

    def _discover(self):
        return []

    def create_context(self, devices, memory="auto"):
        raise AssertionError("not used")


@pytest.fixture
def driver(monkeypatch):
    fake = FakeDriver()
    monkeypatch.setattr(green, "cu", lambda: fake)
    return fake


@pytest.fixture
def machine(monkeypatch, driver):
    """PoCL's CPU, the GPU through NVIDIA's OpenCL and through CUDA."""
    found = [_cpu(), _gpu_through_opencl(), _gpu()]
    loaded = {"opencl": _OpenCL(), "cuda": CudaBackend()}
    monkeypatch.setattr(selector, "all_devices", lambda: list(found))
    monkeypatch.setattr(selector, "backends", lambda: dict(loaded))
    return found


# the selector ------------------------------------------------------------------------

def test_a_slice_is_a_device_of_its_own(machine):
    (piece,) = selector.select("cuda:sms=16")
    assert piece.id == "cuda:cuda-sms16:0"
    assert piece.compute_units == 16 and piece.handle.sms == 16
    assert (piece.backend, piece.kind, piece.name, piece.identity) == ("cuda", "gpu", "NVIDIA H200", "pci:0000:1b:00")
    assert piece.platform_key != machine[2].platform_key  # its own context, beside the whole GPU's
    assert piece.id.startswith(piece.backend + ":")


def test_slice_spellings(machine):
    piece = selector.select("cuda:sms=16")[0]
    for spelling in ["cuda:cuda:0:sms=16", "CUDA:H200:SMS=16", "gpu:sms=16", "cuda:cuda-sms16:0", piece.id]:
        assert selector.select(spelling) == [piece], spelling
    assert selector.select([piece]) == [piece]  # a list of Devices, as sessions pass them on
    assert selector.select("cuda:sms=16")[0] is piece  # made once


def test_cpu_and_a_slice_and_the_whole_gpu(machine):
    cpu, _, gpu = machine
    chosen = selector.select("portable;cuda:sms=16")
    assert [d.id for d in chosen] == [cpu.id, "cuda:cuda-sms16:0"]
    chosen = selector.select("cuda:sms=8;cuda:sms=32;cuda")
    assert [d.id for d in chosen] == ["cuda:cuda-sms8:0", "cuda:cuda-sms32:0", gpu.id]
    assert len({d.platform_key for d in chosen}) == 3  # three contexts


def test_a_request_rounds_up_to_what_the_driver_grants(machine, caplog):
    with caplog.at_level(logging.WARNING, logger="clnn"):
        (piece,) = selector.select("cuda:sms=4")
    assert piece.id == "cuda:cuda-sms8:0" and piece.compute_units == 8
    assert "asked for a slice of 4 SMs, the driver granted 8" in caplog.text
    assert selector.select("cuda:sms=8") == [piece]


@pytest.mark.parametrize("spelling, words", [
    ("cuda:sms=0", "sms= takes a number"),
    ("cuda:sms=many", "sms= takes a number"),
    ("cuda:sms=", "sms= takes a number"),
    ("portable:sms=4", "names no device that can run on a share"),
    ("nvidia:sms=4", "names no device that can run on a share"),
    ("cuda:sms=132", "select the whole GPU without sms="),
    ("cuda:sms=500", "it has 132 SMs"),
    ("cuda:sms=130", "the driver made no group of 130 SMs"),
    ("cuda:sms=16:sms=8", "it is a slice already"),
])
def test_bad_slices_are_refused_clearly(machine, spelling, words):
    with pytest.raises(clnn.DeviceError, match=words):
        selector.select(spelling)


def test_other_backends_cannot_slice():
    with pytest.raises(clnn.DeviceError, match="only CUDA GPUs can"):
        _OpenCL().slice(_cpu(), 4)


def test_the_calibration_key_tells_slices_apart(machine):
    gpu = machine[2]
    keys = {device_key(d) for d in [gpu, *selector.select("cuda:sms=8;cuda:sms=16;cuda:sms=32")]}
    assert len(keys) == 4
    assert device_key(selector.select("cuda:sms=4")[0]) == device_key(selector.select("cuda:sms=8")[0])


def test_the_devices_command_lists_a_selected_slice(machine, monkeypatch, capsys):
    from clnn import cli
    monkeypatch.setattr(cli, "all_devices", selector.all_devices)
    monkeypatch.setattr(cli, "select", selector.select)
    assert cli.main(["devices", "--devices", "portable;cuda:sms=16"]) == 0
    line = next(text for text in capsys.readouterr().out.splitlines() if "cuda:cuda-sms16:0" in text)
    assert line.startswith(" * ") and "  16 CUs" in line


# drivers that cannot ------------------------------------------------------------------

def test_a_driver_older_than_12_4_is_refused(driver):
    with pytest.raises(clnn.DeviceError, match="need a CUDA 12.4 or newer driver; this one is CUDA 12.2"):
        green.slice_device(_gpu(version=(12, 2)), 16)
    assert driver.calls == []


def test_bindings_without_green_contexts_are_refused(monkeypatch):
    monkeypatch.setattr(green, "cu", lambda: object())
    with pytest.raises(clnn.DeviceError, match="cuda-bindings lack cuDeviceGetDevResource"):
        green.slice_device(_gpu(), 16)


def test_a_driver_without_the_functions_is_refused(driver, monkeypatch):
    def missing(*args):
        raise RuntimeError('Function "cuDeviceGetDevResource" not found')
    monkeypatch.setattr(driver, "cuDeviceGetDevResource", missing)
    with pytest.raises(clnn.DeviceError, match="the driver has no green contexts"):
        green.slice_device(_gpu(), 16)


def test_a_failing_split_is_refused(driver):
    driver.failing = "cuDevSmResourceSplitByCount"
    with pytest.raises(clnn.DeviceError, match="splitting off 16 SMs failed: .*CUDA_ERROR_NOT_SUPPORTED"):
        green.slice_device(_gpu(), 16)


# the green context ----------------------------------------------------------------------

def test_the_green_context_runs_with_the_slice_current(driver):
    piece = green.slice_device(_gpu(), 12)
    ctx = green.GreenContext(FakePrimary(driver), piece.handle, piece)
    assert driver.current == []
    made = [c for c in driver.calls if "Current" not in c]
    assert made[-3:] == ["cuDevResourceGenerateDesc", "cuGreenCtxCreate", "cuCtxFromGreenCtx"]
    assert ctx.handle == ("ctx", 16)
    with ctx:
        assert driver.current == [("ctx", 16)]
        with ctx:  # reentrant in one thread
            assert driver.current == [("ctx", 16)] * 2
    assert driver.current == []
    assert isinstance(ctx.waits, FakePrimary)  # blocking waits hold no lock of the slice


def test_a_green_context_that_cannot_be_made_is_a_device_error(driver):
    piece = green.slice_device(_gpu(), 16)
    driver.failing = "cuGreenCtxCreate"
    with pytest.raises(clnn.DeviceError, match="creating a green context of 16 SMs failed"):
        green.GreenContext(FakePrimary(driver), piece.handle, piece)
    assert driver.current == []


def test_a_slice_the_driver_no_longer_grants_is_refused(driver):
    piece = green.slice_device(_gpu(), 16)
    driver.step = 32
    with pytest.raises(clnn.DeviceError, match="now grants 32 SMs for a slice of 16"):
        green.GreenContext(FakePrimary(driver), piece.handle, piece)
