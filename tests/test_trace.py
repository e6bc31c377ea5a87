"""Chrome traces of a run: valid trace JSON with one track per device queue
plus the host, every kernel and copy of the run named by its layer and box,
and the halves of a split layer on two devices' tracks."""

import json

import pytest

import clnn
from clnn import Model
from clnn.ops import Conv2d

from helpers import ancestors, rand


def _trace(session, feeds, path):
    session.run(None, feeds, trace=str(path))
    with open(path) as f:
        return json.load(f)["traceEvents"]


def _tracks(events):
    return {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}


@pytest.mark.parametrize("memory", ["unified", "discrete"])
def test_trace_shows_every_command_on_its_track(pair, rng, tmp_path, memory):
    model = clnn.models.squeezenet()
    devices = list(dict.fromkeys(pair))
    session = clnn.InferenceSession(model, devices=devices, plan=[0.4, 0.6] if len(devices) > 1 else [1.0],
                                    memory=memory)
    events = _trace(session, {"input": rand(rng, model.inputs[0].shape)}, tmp_path / "run.json")
    tracks = _tracks(events)
    assert tracks[0] == "host" and set(tracks.values()) == {"host"} | {d.id for d in pair}

    spans = [e for e in events if e["ph"] == "X"]
    assert all(e["dur"] >= 0 and e["ts"] >= 0 and e["tid"] in tracks for e in spans)
    assert {e["name"] for e in spans if e["tid"] == 0} == {"enqueue", "wait"}

    kernels = [e for e in spans if e["cat"] == "kernel"]
    layers = {layer.name for layer in model.layers if not layer.is_view}
    assert {e["args"]["layer"] for e in kernels} == layers
    assert all(e["args"]["box"] and e["args"]["op"] for e in kernels)
    # one event per compiled command, so nothing is dropped or doubled
    assert len(spans) - 2 == len(session._executor.schedule.commands)
    copies = [e for e in spans if e["cat"] not in ("kernel", "host")]
    if memory == "discrete" and len(set(pair)) > 1:
        assert copies and all(e["name"].startswith(e["cat"]) for e in copies)


def test_split_layer_is_handed_to_both_devices_at_once(pair, rng, tmp_path):
    """The two halves of a split conv go to two device queues with no
    dependency between them, so the devices may run them together; the
    trace shows each on its own track. Whether they then overlap in time is
    the driver's scheduling (PoCL's devices share one thread pool here), so
    the overlap itself is shown by the GPU machine's trace in
    benchmarks/results, not asserted on a loaded 2-core CI machine."""
    if pair[0] == pair[1]:
        pytest.skip("needs two devices")
    conv = Conv2d("conv", "x", rand(rng, (96, 64, 3, 3), 0.05), rand(rng, (96,)), pads=(1, 1, 1, 1))
    model = Model({"x": (1, 64, 56, 56)}, [conv], ["conv"])
    session = clnn.InferenceSession(model, devices=list(pair), plan=[0.5, 0.5])
    commands = session._executor.schedule.commands
    halves = {}  # device id: its kernels (a GPU's half may be several: Winograd's transforms, split K)
    for i, c in enumerate(commands):
        if c.kind == "kernel":
            halves.setdefault(c.device.id, []).append(i)
    assert len(halves) == 2
    first, second = halves.values()
    for one in first:
        for other in second:
            assert one not in ancestors(commands, other) and other not in ancestors(commands, one)
    events = _trace(session, {"x": rand(rng, (1, 64, 56, 56))}, tmp_path / "run.json")
    tracks = _tracks(events)
    kernels = {tracks[e["tid"]]: e for e in events if e.get("cat") == "kernel"}
    assert set(kernels) == {d.id for d in pair}
    boxes = sorted(e["args"]["box"] for e in kernels.values())
    assert boxes == ["n0:1 c0:48 h0:56", "n0:1 c48:96 h0:56"]
