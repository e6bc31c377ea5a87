"""Device discovery, selection and de-duplication."""

import pytest

import clnn
from clnn.runtime import selector
from clnn.runtime.device import Device
from clnn.runtime.pocl_threads import pin_pocl_threads


def test_contract_fields(devices):
    for d in devices:
        assert d.id.startswith(d.backend + ":")
        assert d.kind in ("cpu", "gpu", "accelerator")
        assert isinstance(d.unified_memory, bool)
        assert d.compute_units >= 1
        assert d.name and d.platform


def test_ids_are_unique_and_select_themselves():
    found = clnn.devices()
    assert len({d.id for d in found}) == len(found)
    for d in found:
        assert clnn.devices(d.id) == [d]
        assert clnn.devices([d]) == [d]


def test_selector_matching_nothing_names_what_exists():
    with pytest.raises(clnn.DeviceError) as info:
        clnn.devices("no-such-platform:nor-device")
    message = str(info.value)
    assert "no-such-platform:nor-device" in message
    for d in clnn.devices():
        assert d.id in message


def test_environment_variable_is_the_default(monkeypatch, devices):
    monkeypatch.setenv("CLNN_DEVICES", devices[0].id)
    assert clnn.select() == [devices[0]]
    monkeypatch.setenv("CLNN_DEVICES", "no-such-thing")
    with pytest.raises(clnn.DeviceError):
        clnn.select()
    assert clnn.select(devices[0].id) == [devices[0]]  # the argument wins


def test_platform_and_device_substrings_case_insensitive(devices):
    d = devices[0]
    word = d.platform.split()[0].upper()
    picked = clnn.devices(f"{word}:{d.name[:4].upper()}")
    assert d in picked
    assert all(p.platform == d.platform for p in picked)


def test_bad_selector_types():
    with pytest.raises(clnn.DeviceError):
        clnn.devices([3])
    with pytest.raises(clnn.DeviceError):
        clnn.devices(" ; ")


def _fake(id_, platform, identity, kind="cpu", backend="opencl", version=(3, 0)):
    return Device(id=id_, name="dev", kind=kind, platform=platform, backend=backend,
                  unified_memory=kind == "cpu", compute_units=4, identity=identity,
                  simulator=identity.startswith("sim:"), platform_version=version)


def test_same_physical_device_through_two_drivers_is_used_once():
    old_pocl = _fake("opencl:portable:0", "Portable Computing Language", "cpu", version=(3, 0))
    new_pocl = _fake("opencl:portable-2:0", "Portable Computing Language", "cpu", version=(5, 0))
    gpu_cl = _fake("opencl:nvidia:0", "NVIDIA CUDA", "pci:0000:1b:00", kind="gpu")
    gpu_cuda = _fake("cuda:cuda:0", "CUDA", "pci:0000:1b:00", kind="gpu", backend="cuda")
    kept = selector._deduplicate([old_pocl, gpu_cuda, new_pocl, gpu_cl])
    assert kept == [new_pocl, gpu_cl]


def test_several_devices_of_one_platform_stay():
    a = _fake("opencl:portable:0", "Portable Computing Language", "cpu")
    b = _fake("opencl:portable:1", "Portable Computing Language", "cpu")
    assert selector._deduplicate([a, b]) == [a, b]


def test_simulators_only_when_named(monkeypatch):
    sim = _fake("opencl:oclgrind:0", "Oclgrind", "sim:oclgrind", kind="accelerator")
    cpu = _fake("opencl:portable:0", "Portable Computing Language", "cpu")
    monkeypatch.setattr(selector, "all_devices", lambda: [sim, cpu])
    assert selector.select("all") == [cpu]
    assert selector.select("oclgrind") == [sim]
    assert selector.select("cpu;oclgrind") == [cpu, sim]


def test_cli_lists_devices(capsys):
    from clnn.cli import main
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for d in clnn.devices():
        assert d.id in out
    assert "unified_memory=" in out


# PoCL's worker threads pinned, one per core -------------------------------------------
def test_pocl_threads_are_pinned_where_the_process_may_use_every_core():
    environ = {}
    assert pin_pocl_threads(environ, allowed_cores={0, 1, 2, 3}, cores=4)
    assert environ == {"POCL_AFFINITY": "1"}
    environ = {"POCL_MAX_PTHREAD_COUNT": "2"}
    assert pin_pocl_threads(environ, allowed_cores=range(4), cores=4)
    assert environ["POCL_AFFINITY"] == "1"


@pytest.mark.parametrize("environ, allowed, why", [
    ({"POCL_AFFINITY": "0"}, range(4), "the user's choice stands"),
    ({"POCL_AFFINITY": "1"}, range(4), "already set"),
    ({}, {2, 3}, "PoCL would pin threads 0 and 1 to cores the process may not use"),
    ({}, {0, 1, 2}, "one core is outside the process's set"),
    ({"POCL_MAX_PTHREAD_COUNT": "8"}, range(4), "more threads than cores"),
    ({"POCL_MAX_PTHREAD_COUNT": "many"}, range(4), "a thread count PoCL would not read as one"),
])
def test_pocl_threads_stay_as_they_are(environ, allowed, why):
    before = dict(environ)
    assert not pin_pocl_threads(environ, allowed_cores=allowed, cores=4), why
    assert environ == before, why


def test_discovery_pins_pocl_threads_unless_told_otherwise(tmp_path):
    """In a fresh process (PoCL reads the variable when it starts its
    threads), listing the devices sets POCL_AFFINITY=1 where this process may
    use every core, and leaves a value the user set. (Every other test runs
    on the pinned threads.)"""
    import os
    import subprocess
    import sys
    from pathlib import Path
    script = "import os, clnn; clnn.devices(); print(os.environ.get('POCL_AFFINITY', 'unset'))"
    every_core = hasattr(os, "sched_getaffinity") and os.sched_getaffinity(0) == set(range(os.cpu_count()))
    root = str(Path(clnn.__file__).resolve().parent.parent)
    for preset, expected in ((None, "1" if every_core else "unset"), ("0", "0")):
        env = {k: v for k, v in os.environ.items() if k != "POCL_AFFINITY"}
        env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
        if preset is not None:
            env["POCL_AFFINITY"] = preset
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split()[-1:] == [expected], out.stdout
