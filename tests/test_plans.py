"""Co-execution: any plan gives the single-device outputs, for every zoo
model, in one context and across contexts; row chains move only halos;
branches placed on different devices do not wait for each other."""

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import clnn
from clnn.box import Box
from clnn.executor import Executor
from clnn import Model
from clnn.ops import Conv2d
from clnn.plan import Placement, Plan

from helpers import ancestors, rand, rel_err
from test_zoo import SMALL

ZOO_BATCH = {"lenet5": 3, "fcnn": 3, "alexnet": 1, "vgg16": 1, "squeezenet": 2, "resnet18": 2, "resnet50": 1,
             "mobilenet_v2": 1, "yolov2": 1, "posenet": 1, "fst": 2, "retinaface": 1}
# random plans per model and context grouping: fewer for the heavy models on two cores
PLANS = {"lenet5": 6, "fcnn": 6, "alexnet": 2, "vgg16": 1, "squeezenet": 3, "resnet18": 3, "resnet50": 1,
         "mobilenet_v2": 2, "yolov2": 1, "posenet": 1, "fst": 1, "retinaface": 1}


def random_plan(model, pair, rng):
    """Per layer: whole on either device, or a random splittable dimension at
    a random share (0 and 1 included)."""
    ids = (pair[0].id, pair[1].id)
    placements = {}
    for layer in model.layers:
        if layer.is_view:
            continue
        dims = [d for d in ("n", "c", "h") if layer.splittable(d)]
        choice = rng.integers(0, 4)
        if choice < 2 or not dims:
            placements[layer.name] = Placement.whole(ids[choice % 2])
            continue
        share = float(rng.choice([0.0, 1.0, rng.uniform(0.05, 0.95)], p=[0.15, 0.15, 0.7]))
        placements[layer.name] = Placement(ids, (share, 1.0 - share), str(rng.choice(dims)))
    return Plan(model, placements, ids)


@pytest.fixture(scope="module")
def zoo_runs(devices):
    """Each zoo model, its input and its output on the first device alone."""
    rng = np.random.default_rng(11)
    found = {}
    for name in clnn.models.ZOO:
        model = clnn.models.get(name, batch=ZOO_BATCH[name], size=SMALL.get(name))
        x = rand(rng, model.inputs[0].shape)
        (y,) = Executor(model, Plan.single(model, devices[0]), [devices[0]]).run({model.input_names[0]: x})
        found[name] = (model, x, y)
    return found


@pytest.mark.parametrize("grouping, memory", [("platform", "auto"), ("device", "auto"), ("device", "discrete")])
@pytest.mark.parametrize("name", list(clnn.models.ZOO))
def test_random_plans_equal_one_device(zoo_runs, pair, name, grouping, memory):
    model, x, expected = zoo_runs[name]
    rng = np.random.default_rng(zlib.crc32(f"{name} {grouping} {memory}".encode()))
    for _ in range(PLANS[name]):
        plan = random_plan(model, pair, rng)
        executor = Executor(model, plan, list(pair), grouping=grouping, memory=memory)
        executor.poison()
        (actual,) = executor.run({model.input_names[0]: x})
        assert rel_err(actual, expected) < 1e-4, plan.table(model)


def _chain(rng, depth=4):
    layers, x = [], "x"
    for i in range(depth):
        layers.append(Conv2d(f"conv{i}", x, rand(rng, (8, 8, 3, 3), 0.2), rand(rng, (8,)), pads=1,
                             activation="relu"))
        x = layers[-1].name
    return Model({"x": (1, 8, 20, 11)}, layers, [x])


def test_a_row_chain_exchanges_only_halo_rows(pair, rng):
    """Four 3x3 convs split on rows with the same boundaries, each device in
    its own context with resident buffers: between layers only the one row
    on each side of the boundary crosses, never a whole slice."""
    if pair[0] == pair[1]:
        pytest.skip("two distinct devices are needed for two contexts")
    model = _chain(rng)
    ids = (pair[0].id, pair[1].id)
    plan = Plan(model, {layer.name: Placement(ids, (0.5, 0.5), "h") for layer in model.layers}, ids)
    executor = Executor(model, plan, list(pair), grouping="device", memory="discrete")
    row_bytes = 8 * 11 * 4
    moved = [c.detail["bytes"] for c in executor.schedule.commands if c.kind in ("to_host", "to_device")
             and c.detail["tensor"] != "x" and c.detail["tensor"] != model.output_names[0]]
    # between each pair of layers: one halo row each way, out and in again
    assert moved and max(moved) == row_bytes and sum(moved) == 3 * 4 * row_bytes
    x = rand(rng, (1, 8, 20, 11))
    executor.poison()
    assert rel_err(executor.run({"x": x})[0], model.reference({"x": x})[0]) < 1e-4


def test_branches_on_different_devices_do_not_wait_for_each_other(pair, rng):
    model = clnn.models.squeezenet(batch=1)
    ids = (pair[0].id, pair[1].id)
    placements = {layer.name: Placement.whole(ids[1] if layer.name.endswith("expand3x3") else ids[0])
                  for layer in model.layers if not layer.is_view}
    executor = Executor(model, Plan(model, placements, ids), list(pair), grouping="device")
    commands = executor.schedule.commands
    index = {c.label: i for i, c in enumerate(commands) if c.kind == "kernel"}

    for fire in range(2, 10):
        one, three = index[f"fire{fire}.expand1x1"], index[f"fire{fire}.expand3x3"]
        assert one not in ancestors(commands, three) and three not in ancestors(commands, one)
        assert commands[one].device.id != commands[three].device.id or pair[0] == pair[1]
    x = rand(rng, (1, 3, 224, 224))
    single = Executor(model, Plan.single(model, pair[0]), [pair[0]]).run({"input": x})[0]
    assert rel_err(executor.run({"input": x})[0], single) < 1e-4


def test_shares_are_rounded_to_the_kernels_granule():
    boxes = Placement(("a", "b"), (0.3, 0.7), "c").boxes((1, 64, 7, 7), granule=4)
    assert [b.range("c") for _, b in boxes] == [(0, 20), (20, 64)]
    boxes = Placement(("a", "b"), (0.0, 1.0), "h").boxes((1, 64, 7, 7))
    assert [(d, b) for d, b in boxes] == [("b", Box(0, 1, 0, 64, 0, 7))]
    # a share of 0 or 1 stays so whatever the granule
    boxes = Placement(("a", "b"), (1.0, 0.0), "c").boxes((1, 5, 7, 7), granule=4)
    assert [(d, b.range("c")) for d, b in boxes] == [("a", (0, 5))]


# run in a child process: a deadlock there holds the GIL, so no thread of the
# test process could notice it and fail the test
FAILED_ENQUEUE = """
import sys
import numpy as np
import clnn
from clnn.executor import Executor
from clnn.plan import Plan
pair = [clnn.select(name)[0] for name in sys.argv[1:]]
model = clnn.models.lenet5()
executor = Executor(model, Plan.static(model, pair, [0.5, 0.5]), pair, grouping="device", memory="discrete")
x = np.random.default_rng(3).standard_normal(model.inputs[0].shape).astype(np.float32) + 0.1
(expected,) = executor.run({"input": x})
failing = executor.schedule.commands[-3]
planted = failing.enqueue

def refuse(wait_for):
    raise RuntimeError("planted enqueue failure")

def interrupt(wait_for):
    raise KeyboardInterrupt

for planted_failure, raised in [(refuse, clnn.DeviceError), (interrupt, KeyboardInterrupt)] * 2:
    failing.enqueue = planted_failure
    try:
        executor.run({"input": x})
        sys.exit("the run did not fail")
    except raised as exc:
        assert raised is KeyboardInterrupt or (
            "planted enqueue failure" in str(exc) and failing.label in str(exc)), exc
failing.enqueue = planted
executor.poison()
assert np.array_equal(executor.run({"input": x})[0], expected)
print("runs after the failure are right")
"""


def test_a_command_that_fails_to_enqueue_fails_only_its_run(pair):
    """Commands already enqueued in two contexts (copies waiting on the other
    device through the bridge) finish before the error is raised: the run
    fails with a DeviceError (or the interrupt goes on), never hangs, and the
    next run is right."""
    try:
        # command by command: a run replayed as a CUDA graph calls no enqueue to fail
        child = subprocess.run([sys.executable, "-c", FAILED_ENQUEUE, pair[0].id, pair[1].id],
                               capture_output=True, text=True, timeout=180,
                               env={**os.environ, "CLNN_CUDA_GRAPHS": "0"})
    except subprocess.TimeoutExpired:
        pytest.fail("a failed enqueue left the run hanging")
    assert child.returncode == 0 and "runs after the failure are right" in child.stdout, child.stderr[-3000:]


def test_tensors_whose_lives_do_not_overlap_take_turns_in_memory(zoo_runs, pair):
    """A run holds about the tensors alive at once, not all of them; a slot's
    next tenant waits for everything that touched the previous one in the
    same memory, so split runs over one or two contexts stay exact."""
    from clnn.storage import plan_storage, share_storage
    model, x, expected = zoo_runs["squeezenet"]
    views = plan_storage(model)
    storages = {v.storage for v in views.values()}
    alone = sum(int(np.prod(model.shapes[s])) for s in storages)
    slots = share_storage(model, views)
    assert sum(slot.size for slot in slots) < 0.5 * alone
    assert sorted(s for slot in slots for s in slot.tenants) == sorted(storages)
    rng = np.random.default_rng(5)
    for grouping, memory in (("platform", "auto"), ("device", "discrete")):
        for _ in range(2):
            plan = random_plan(model, pair, rng)
            executor = Executor(model, plan, list(pair), grouping=grouping, memory=memory)
            assert len({id(s._slot) for s in executor.storages.values()}) == len(slots)
            executor.poison()
            for _ in range(3):  # a missing wait shows as a race, not every run
                (actual,) = executor.run({model.input_names[0]: x})
                assert rel_err(actual, expected) < 1e-4, plan.table(model)


def test_a_batch_split_over_two_memories_never_waits_across_devices(zoo_runs, pair):
    """Split on the batch, each device in its own context with its own
    buffers: no data crosses between layers, and a slot's next tenant waits
    only for the previous tenant's use of the same memory, so no command
    waits for the other device's (they would run in lockstep)."""
    if pair[0] == pair[1]:
        pytest.skip("two distinct devices are needed for two contexts")
    model, x, expected = zoo_runs["squeezenet"]
    ids = (pair[0].id, pair[1].id)
    plan = Plan(model, {layer.name: Placement(ids, (0.5, 0.5), "n") for layer in model.layers
                        if not layer.is_view}, ids)
    executor = Executor(model, plan, list(pair), grouping="device", memory="discrete")
    commands = executor.schedule.commands
    crossing = [(c.label, commands[d].label) for c in commands for d in c.deps
                if commands[d].device.id != c.device.id]
    assert not crossing
    executor.poison()
    for _ in range(3):
        assert rel_err(executor.run({model.input_names[0]: x})[0], expected) < 1e-4
