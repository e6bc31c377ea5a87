"""plan="auto": correct outputs, never slower than the best single device
(as the partitioner itself measured), a cache that survives corruption, and
the planner's choices on synthetic calibrations."""

import json

import numpy as np
import pytest

import clnn
from clnn.executor import Executor
from clnn.partition import auto_plan, fallback_text
from clnn.partition.cache import CalibrationCache, calibration_key
from clnn.partition.costmodel import DeviceCosts, interpolate
from clnn.partition.planner import Calibration, Link, Planner, steps_of
from clnn.plan import Plan
from clnn.runtime.device import Device

from helpers import rand, rel_err


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNN_CACHE_DIR", str(tmp_path))
    return CalibrationCache(tmp_path)


@pytest.mark.parametrize("name, batch", [("lenet5", 2), ("squeezenet", 1), ("resnet18", 1)])
def test_auto_plans_compute_what_one_device_computes(name, batch, devices, cache, rng):
    model = clnn.models.get(name, batch=batch)
    x = rand(rng, model.inputs[0].shape)
    expected = Executor(model, Plan.single(model, devices[0]), [devices[0]]).run({"input": x})[0]
    session = clnn.InferenceSession(model, devices=devices, plan="auto")
    assert rel_err(session.run(None, {"input": x})[0], expected) < 1e-4
    report = session.partition_report
    if len(devices) > 1:
        # the partitioner's own verification: never more than 2 % slower than
        # the best single device it timed, or it falls back to that device
        assert report.plan_time <= 1.02 * report.best_single
        assert set(report.timed) and report.speedup >= 1 / 1.02
        assert "predicted" in report.table() and "efficiency" in report.table()
        assert str(report) == report.table()  # was a dataclass repr
        kernels = {layer.name for layer in session.model.layers if not layer.is_view}
        assert set(report.layer_predicted) == kernels  # was empty after a fallback to one device


def test_a_single_device_needs_no_calibration(devices, cache):
    model = clnn.models.lenet5()
    plan, report = auto_plan(model, devices[:1], cache=cache)
    assert report is None and plan.devices == [devices[0].id]


def test_the_cache_survives_corruption(pair, cache):
    if pair[0] == pair[1]:
        pytest.skip("calibration of a pair needs two devices")
    model = clnn.models.fcnn()
    first = auto_plan(model, list(pair), cache=cache)[1]
    assert first.layers_measured > 0
    files = sorted(cache.directory.glob("*.json"))
    assert files
    assert auto_plan(model, list(pair), cache=cache)[1].layers_measured == 0  # all from the cache
    for path in files:
        path.write_text('{"format": "clnn-calibration/1", "key": "not this one", "data": {}}'
                        if path == files[0] else "{ this is not json")
    with pytest.warns(UserWarning, match="ignoring calibration cache"):
        again = auto_plan(model, list(pair), cache=cache)[1]
    assert again.layers_measured > 0
    for path in files:  # rewritten whole and valid
        assert json.loads(path.read_text())["format"] == "clnn-calibration/1"


def _rewrite_records(files, change):
    for path in files:
        stored = json.loads(path.read_text())
        stored["data"] = change(stored["data"])
        path.write_text(json.dumps(stored))


def _strings(value):
    """Every leaf of a record replaced by a string."""
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    return "oops"


@pytest.mark.parametrize("change", [lambda data: [], _strings, lambda data: dict(data, layers=[1, 2])],
                         ids=["data-is-a-list", "every-field-a-string", "layers-not-a-table"])
def test_a_cache_of_the_right_format_with_malformed_contents_is_measured_again(pair, cache, change):
    """Before: AttributeError from costmodel.py; now a warning naming the
    file, and what was dropped is measured again."""
    if pair[0] == pair[1]:
        pytest.skip("calibration of a pair needs two devices")
    model = clnn.models.fcnn()
    auto_plan(model, list(pair), cache=cache)
    files = sorted(cache.directory.glob("*.json"))
    _rewrite_records(files, change)
    with pytest.warns(UserWarning, match="calibration cache .*json") as caught:
        plan, report = auto_plan(model, list(pair), cache=cache)
    assert any(str(path) in str(w.message) for w in caught for path in files)
    assert report.layers_measured > 0
    assert plan.used_devices()
    assert auto_plan(model, list(pair), cache=cache)[1].layers_measured == 0  # the new records were written


@pytest.mark.parametrize("where", ["a-regular-file", "below-a-regular-file"])
def test_a_cache_directory_that_cannot_be_written_keeps_the_calibration_in_memory(pair, tmp_path, where,
                                                                                   monkeypatch):
    """Before: NotADirectoryError from cache.save after all the measuring;
    now a warning, the session works, and this process reuses what it
    measured."""
    if pair[0] == pair[1]:
        pytest.skip("calibration of a pair needs two devices")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("CLNN_CACHE_DIR", str(blocker if where == "a-regular-file" else blocker / "below"))
    model = clnn.models.fcnn(batch=3)
    with pytest.warns(UserWarning, match="cannot write the calibration cache"):
        session = clnn.InferenceSession(model, devices=list(pair), plan="auto")
    x = np.ones((3, 784), np.float32)
    assert rel_err(session.run(None, {"input": x})[0], model.reference({"input": x})[0]) < 1e-4
    assert auto_plan(model, list(pair))[1].layers_measured == 0  # kept in memory


def test_interpolation_between_measured_shares():
    times = {0.25: 2.0, 0.5: 3.0, 1.0: 5.0}
    assert interpolate(times, 0.0) == 0.0
    assert interpolate(times, 0.75) == pytest.approx(4.0)
    assert interpolate(times, 1.0) == pytest.approx(5.0)
    # below the smallest share: towards the intercept of the two smallest (1.0 at share 0)
    assert interpolate(times, 0.125) == pytest.approx(1.5)


def _device(index, kind="cpu", identity=None):
    return Device(id=f"opencl:fake:{index}", name=f"fake{index}", kind=kind, platform="Fake", backend="opencl",
                  unified_memory=True, compute_units=4, identity=identity or f"fake{index}")


def test_the_latency_model_predicts_new_shapes_only_where_it_fits():
    device = _device(0)
    costs = DeviceCosts(device, {})
    model = clnn.models.vgg16()
    convs = [layer for layer in model.layers if layer.op == "Conv"]
    for layer in convs[:6]:  # time = 20 us + 1 ns per kflop
        costs.add(layer, {s: 2e-5 + layer.flops() * s * 1e-12 for s in (0.25, 0.5, 0.75, 1.0)})
    unseen = convs[8]
    assert costs.measured(unseen) is None and costs.confident(unseen)
    assert costs.time(unseen, 1.0) == pytest.approx(2e-5 + unseen.flops() * 1e-12, rel=0.05)
    noisy = DeviceCosts(device, {})
    rng = np.random.default_rng(0)
    for layer in convs[:6]:
        noisy.add(layer, {s: float(rng.uniform(1e-5, 1e-1)) for s in (0.25, 0.5, 1.0)})
    assert not noisy.confident(unseen)


class _Costs:
    """Synthetic kernel times: a fixed cost plus FLOPs at a device's speed."""

    def __init__(self, gflops, fixed=1e-5):
        self.gflops, self.fixed = gflops, fixed

    def time(self, layer, share):
        return 0.0 if share <= 0 else self.fixed + layer.flops() * share / (self.gflops * 1e9)


def _calibration(devices, speeds, launch, link):
    links = {(a.id, b.id): link for a in devices for b in devices if a.id != b.id}
    for d in devices:
        links[("host", d.id)] = links[(d.id, "host")] = Link(0.0, 0.0)
    return Calibration({d.id: _Costs(s) for d, s in zip(devices, speeds)},
                       {d.id: launch[i] for i, d in enumerate(devices)},
                       {d.id: 1e-5 for d in devices}, links)


def test_big_layers_split_in_proportion_to_speed():
    model = clnn.models.vgg16()
    fast, slow = _device(0, "gpu"), _device(1)
    cal = _calibration([fast, slow], [3000.0, 1000.0], [2e-5, 8e-5], Link(5e-5, 1e-11))
    plan, predicted, _ = Planner(model, [fast, slow], cal).best()
    conv = plan.placements["conv3_2"]
    assert conv.dim is not None and conv.shares[conv.devices.index(fast.id)] == pytest.approx(0.75, abs=0.1)
    assert predicted < Planner(model, [fast, slow], cal).single(fast.id)


def test_expensive_sharing_keeps_everything_on_the_fast_device():
    model = clnn.models.resnet18()
    fast, slow = _device(0, "gpu"), _device(1)
    cal = _calibration([fast, slow], [3000.0, 1000.0], [2e-5, 8e-5], Link(1.0, 1e-6))
    plan, _, _ = Planner(model, [fast, slow], cal).best()
    assert {p.devices[p.shares.index(max(p.shares))] for p in plan.placements.values()} == {fast.id}
    assert all(p.dim is None for p in plan.placements.values())


def test_a_batch_split_balances_devices_that_cannot_afford_to_share_layers():
    """Sharing a layer costs a second here, so the layer-by-layer plan keeps
    everything on the fast device; the data-parallel plan moves nothing
    between layers and gives the slow device its third of the items."""
    model = clnn.models.resnet18(batch=9)
    fast, slow = _device(0, "gpu"), _device(1)
    cal = _calibration([fast, slow], [2000.0, 1000.0], [2e-5, 2e-5], Link(1.0, 1e-6))
    planner = Planner(model, [fast, slow], cal)
    plan, predicted, times = planner.batch_split()
    splits = [p for p in plan.placements.values() if p.dim is not None]
    assert splits and all(p.dim == "n" and p.shares == pytest.approx((6 / 9, 3 / 9)) and p.devices == (fast.id, slow.id)
                          for p in splits)
    assert predicted < 0.75 * planner.single(fast.id) and set(times) == set(plan.placements)
    assert Planner(clnn.models.resnet18(), [fast, slow], cal).batch_split() is None  # batch 1


def test_a_fallback_names_every_candidate_measured():
    """The report of plan="auto" says what each candidate measured, so a
    batch split that lost is visible beside the planned placement."""
    labels = ["gpu:0", "cpu:0", "planned", "planned without splits", "batch split"]
    text = fallback_text(labels, [0.024, 0.055, 0.0367, 0.030, 0.0251], 2, 0, 0)
    assert text == ("the planned placement measured 36.700 ms against 24.000 ms on gpu:0 alone, planned without "
                    "splits 30.000 ms, batch split 25.100 ms; kept: gpu:0")
    assert fallback_text(labels[:3] + labels[4:], [0.03, 0.05, 0.04, 0.02], 2, 0, 3).endswith(
        "alone, batch split 20.000 ms; kept: batch split")


def test_small_models_go_where_launches_are_cheapest():
    model = clnn.models.lenet5()
    gpu, cpu = _device(0, "gpu"), _device(1)
    cal = _calibration([gpu, cpu], [5000.0, 50.0], [2e-4, 2e-5], Link(1e-4, 1e-10))
    plan, _, _ = Planner(model, [gpu, cpu], cal).best()
    assert all(p.devices == (cpu.id,) for p in plan.placements.values())


def test_devices_on_one_processor_do_not_overlap():
    model = clnn.models.vgg16()
    a, b = _device(0, identity="cpu"), _device(1, identity="cpu")
    cal = _calibration([a, b], [1000.0, 1000.0], [2e-5, 2e-5], Link(1e-6, 0.0))
    plan, predicted, _ = Planner(model, [a, b], cal).best()
    assert predicted == pytest.approx(Planner(model, [a, b], cal).single(a.id), rel=0.02)


def test_parallel_branches_form_steps():
    model = clnn.models.squeezenet()
    steps = [[layer.name for layer in step] for step in steps_of(model)]
    assert ["fire2.expand1x1", "fire2.expand3x3"] in steps
    resnet = [[layer.name for layer in step] for step in steps_of(clnn.models.resnet18())]
    assert ["layer2.0.conv1", "layer2.0.downsample.0"] in resnet or \
        ["layer2.0.downsample.0", "layer2.0.conv1"] in resnet


def test_calibrate_command_shows_progress(devices, cache, capsys):
    from clnn.cli import main
    assert main(["calibrate", "fcnn", "--devices", ";".join(d.id for d in devices)]) == 0
    captured = capsys.readouterr()
    assert "calibration stored in" in captured.out
    # no bar where stderr is not a terminal (it wrote carriage returns into logs): one line per model
    assert "\r" not in captured.err and "fcnn: " in captured.err and "measured in" in captured.err
    assert list(cache.directory.glob("*.json"))
    key = calibration_key(devices[0])
    assert cache.load(key)["launch"] > 0
    assert main(["calibrate", "fcnn", "--devices", ";".join(d.id for d in devices)]) == 0
    assert "fcnn: calibrated already (from the cache)" in capsys.readouterr().err  # was "0 layer shapes measured"


def test_the_progress_bar_follows_calibration():
    import io

    from tqdm import tqdm

    from clnn.cli import _progress
    shown = io.StringIO()
    with tqdm(desc="fcnn", file=shown, disable=False) as bar:
        step = _progress(bar)
        step(1, 4, "launch opencl:portable:0")
        step(3, 5, "layer opencl:portable:1 fc2")
    assert bar.n == 3 and bar.total == 5 and "fcnn" in shown.getvalue() and "fc2" in shown.getvalue()
