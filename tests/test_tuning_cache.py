"""Tuning records in clnn's cache folder: what tuning_for prefers, a record
that is not this device's or does not fit the schema ignored with a warning,
a folder that cannot be written, and autotune (``clnn tune``, plan="auto"
with CLNN_TUNE=auto) writing a record that a new Target picks up."""

import json
from dataclasses import replace

import numpy as np
import pytest

import clnn
from clnn.cache_files import device_key
from clnn.cli import main
from clnn.ops import CpuBlocks, GemmTile, Target
from clnn.ops import tuning as tuning_module
from clnn.ops.tuning import DEFAULT, TUNED, TuningCache, save_tuning, tuning_for, tuning_record, tuning_source
from clnn.partition import auto_plan, tune
from clnn.partition.cache import calibration_key

from helpers import rel_err

# a tuning that differs from DEFAULT in a field of every kind a record holds
OTHER = DEFAULT.with_overrides({"conv_tiles": "64x64x16/4x4", "winograd": 2, "gemv": "b16/LS128/KL32/RR4",
                                "build_options": "-cl-fast-relaxed-math", "cpu_blocks.MR": 4,
                                "cpu_blocks.TPB": 8, "matmul.cpu.RT": 4})



def without_record(device):
    """What a device without a record of its own gets: its row of the
    table (the H200 has one), else the default."""
    return (TUNED[device.name], "table") if device.name in TUNED else (DEFAULT, "default")

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNN_CACHE_DIR", str(tmp_path))
    return TuningCache(tmp_path)


def _stored(cache, device):
    return json.loads(cache.path(device_key(device)).read_text())


def _rewrite(cache, device, change):
    path = cache.path(device_key(device))
    stored = json.loads(path.read_text())
    path.write_text(json.dumps(change(stored)))
    return path


def test_a_record_comes_back_as_the_tuning_it_stored(devices, cache):
    device = devices[0]
    assert tuning_source(device) == without_record(device)
    path = save_tuning(device, OTHER, 0.002, 0.001)
    assert path == cache.path(device_key(device)) and path.parent == cache.directory
    assert _stored(cache, device)["format"] == "clnn-tuning/1"
    assert tuning_source(device) == (OTHER, "cache")
    assert Target.of(device).tuning == OTHER
    same = devices[-1].name == device.name and device_key(devices[-1]) == device_key(device)
    assert tuning_for(devices[-1]) == (OTHER if same else without_record(devices[-1])[0])


def test_a_new_tuning_calibrates_afresh(devices, cache):
    """A device's layer times are those of its tuning's kernels."""
    before = calibration_key(devices[0])
    save_tuning(devices[0], OTHER, 0.002, 0.001)
    assert calibration_key(devices[0]) != before
    assert calibration_key(devices[0]).startswith(device_key(devices[0]))


def test_the_record_of_another_driver_version_is_not_this_devices(devices, cache):
    device = devices[0]
    newer = replace(device, driver_version=device.driver_version + "-next")
    save_tuning(newer, OTHER, 0.002, 0.001)
    assert tuning_source(newer)[1] == "cache"
    assert tuning_source(device) == without_record(device)  # another file: nothing to warn about
    # the other version's file where this device's should be: named in a warning, ignored
    path = cache.path(device_key(device))
    path.write_text(cache.path(device_key(newer)).read_text())
    with pytest.warns(UserWarning, match=f"ignoring tuning cache {path}.*another device or version"):
        assert tuning_source(device) == without_record(device)


def _field(name, value):
    return lambda stored: {**stored, "data": {**stored["data"], "tuning": {**stored["data"]["tuning"], name: value}}}


def _without(name):
    return lambda stored: {**stored, "data": {**stored["data"], "tuning": {
        k: v for k, v in stored["data"]["tuning"].items() if k != name}}}


@pytest.mark.parametrize("change, message", [
    (lambda stored: {**stored, "format": "clnn-tuning/0"}, "format clnn-tuning/0"),
    (lambda stored: {**stored, "data": [1, 2]}, "not a record"),
    (lambda stored: {**stored, "data": {**stored["data"], "tuning": "fast"}}, "not a table of fields"),
    (lambda stored: {**stored, "data": {**stored["data"], "tuned_seconds": -1}}, "not numbers of seconds"),
    (_field("wg_per_cu", "4"), "wg_per_cu is '4', not an integer"),
    (_field("max_split", 2.5), "max_split is 2.5, not an integer"),
    (_field("winograd", True), "winograd is True, not an integer"),
    (_field("winograd", 3), "field winograd: .*not valid"),
    (_field("conv_tiles", 128), "conv_tiles is 128, not text"),
    (_field("conv_tiles", "128x128"), "field conv_tiles: .*TMxTNxTK/RMxRN"),
    (_field("conv_tiles", "64x64x16/3x4"), "field conv_tiles: .*not valid"),
    (_field("gemv", "LS256"), "field gemv: .*bMAXBATCH"),
    (_field("build_options", ["-O2"]), "build_options is \\['-O2'\\], not text"),
    (_field("cpu_blocks.MR", 0), "field cpu_blocks.MR: .*not valid"),
    (_field("cpu_blocks.KC", None), "cpu_blocks.KC is None, not an integer"),
    (_field("matmul.cpu.RT", "4"), "matmul.cpu.RT is '4', not an integer"),
    (_field("tiles", 4), "field tiles: no tuning parameter 'tiles'"),
    (_without("cpu_blocks.WKC"), "field cpu_blocks.WKC is missing"),
], ids=["format", "data-a-list", "tuning-text", "seconds", "int-as-text", "int-as-float", "int-as-bool",
        "winograd-3", "tiles-as-int", "tile-text", "tile-invalid", "gemv-text", "options-as-list", "blocks-zero",
        "blocks-none", "op-param-text", "unknown-field", "missing-field"])
def test_a_record_that_does_not_fit_the_schema_is_ignored_with_a_warning(devices, cache, change, message):
    device = devices[0]
    save_tuning(device, OTHER, 0.002, 0.001)
    path = _rewrite(cache, device, change)
    with pytest.warns(UserWarning, match=f"tuning cache {path}.*{message}"):
        assert tuning_source(device) == without_record(device)


def test_a_file_that_is_not_json_is_ignored_with_a_warning(devices, cache):
    device = devices[0]
    path = save_tuning(device, OTHER, 0.002, 0.001)
    path.write_text("{ not json")
    with pytest.warns(UserWarning, match=f"ignoring tuning cache {path}"):
        assert tuning_source(device) == without_record(device)


@pytest.mark.parametrize("where", ["a-regular-file", "below-a-regular-file"])
def test_a_folder_that_cannot_be_written_keeps_the_record_in_memory(devices, tmp_path, monkeypatch, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("CLNN_CACHE_DIR", str(blocker if where == "a-regular-file" else blocker / "below"))
    with pytest.warns(UserWarning, match="cannot write the tuning cache"):
        assert save_tuning(devices[0], OTHER, 0.002, 0.001) is None
    assert tuning_source(devices[0]) == (OTHER, "cache")
    assert Target.of(devices[0]).tuning == OTHER


def test_the_cache_comes_before_the_table_and_the_table_before_the_default(devices, cache, monkeypatch):
    device = devices[0]
    shipped = replace(DEFAULT, cpu_blocks=CpuBlocks(MR=8), conv_tiles=(GemmTile(64, 64, 16, 4, 4),))
    monkeypatch.setitem(tuning_module.TUNED, device.name, shipped)
    assert tuning_source(device) == (shipped, "table")
    path = save_tuning(device, OTHER, 0.002, 0.001)
    assert tuning_source(device) == (OTHER, "cache")
    path.unlink()  # read again once the file changes
    assert tuning_source(device) == (shipped, "table")
    monkeypatch.delitem(tuning_module.TUNED, device.name)
    assert tuning_source(device) == (DEFAULT, "default")


def test_every_knob_candidate_is_a_tuning_the_kernels_take():
    for knobs in (tune.KNOBS, tune.CPU_KNOBS):
        for knob, values in knobs.items():
            for value in values:
                assert tuning_record(DEFAULT.with_overrides({knob: value}))
    assert tune.knobs_for("cpu") is tune.CPU_KNOBS and tune.knobs_for("gpu") is tune.KNOBS
    assert all(layer.in_shapes[0][0] == 1 for layer in tune.representative_layers(kind="cpu"))


def _tiny(monkeypatch):
    """Autotune's defaults shrunk to two small layers (a Winograd 3x3 and a
    1x1 GEMM) and two knobs, for a 2-core test machine."""
    layers = tune.conv_layers(np.random.default_rng(0), [((1, 16, 9, 9), 12, 3, 1), ((1, 16, 9, 9), 20, 1, 1)])
    monkeypatch.setattr(tune, "representative_layers", lambda seed=0, kind="gpu": layers)
    monkeypatch.setattr(tune, "CPU_KNOBS", {"cpu_blocks.MR": [6, 4], "cpu_blocks.WKC": [8, 4]})
    return layers


def test_autotune_on_a_cpu_writes_a_record_that_a_new_target_takes(devices, cache, monkeypatch):
    device = devices[0]
    if Target.of(device).kind != "cpu":
        pytest.skip("the CPU knobs are tuned on CPU devices")
    layers = _tiny(monkeypatch)
    heard = []
    found, path = tune.tune_and_save(device, reps=2, report=lambda *item: heard.append(item))
    assert [(knob, value) for knob, value, _ in heard] == [(k, v) for k, values in tune.CPU_KNOBS.items()
                                                           for v in values]
    assert found.tuned_seconds == min(s for knob, _, s in heard if knob == "cpu_blocks.WKC")
    assert found.start_seconds > 0 and found.seconds > 0
    assert path == cache.path(device_key(device))
    assert tuning_source(device) == (found.tuning, "cache")
    target = Target.of(device)
    assert target.tuning == found.tuning
    for layer in layers:  # the tuned kernels compute the layer
        _, feeds, output = tune.layer_run(layer, device, target)
        assert rel_err(output, layer.reference(feeds["in0"])) < 1e-4


def test_the_tune_command_shows_progress_and_stores_a_record(devices, cache, monkeypatch, capsys):
    device = devices[0]
    if Target.of(device).kind != "cpu":
        pytest.skip("the CPU knobs are tuned on CPU devices")
    _tiny(monkeypatch)
    assert main(["tune", "--devices", device.id, "--runs", "2"]) == 0
    captured = capsys.readouterr()
    assert f"{device.id}: representative layers" in captured.out and "stored in" in captured.out
    assert "\r" not in captured.err  # no bar where stderr is not a terminal
    assert cache.path(device_key(device)).is_file()
    assert main(["devices", "--devices", device.id]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if f" {device.id} " in line)
    assert "tuning=cache" in row


def test_plan_auto_tunes_a_device_without_a_tuning_only_when_asked(devices, cache, monkeypatch):
    device = devices[0]
    if Target.of(device).kind != "cpu":
        pytest.skip("the CPU knobs are tuned on CPU devices")
    _tiny(monkeypatch)
    model = clnn.models.lenet5()
    auto_plan(model, [device])
    assert tuning_source(device)[1] == "default"  # off by default
    monkeypatch.setenv("CLNN_TUNE", "auto")
    auto_plan(model, [device])
    assert tuning_source(device)[1] == "cache"
    monkeypatch.setenv("CLNN_TUNE", "always")
    with pytest.raises(clnn.DeviceError, match="CLNN_TUNE"):
        auto_plan(model, [device])
