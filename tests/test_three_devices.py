"""Three devices at once: plans, schedules and the partitioner take any
number of devices. Run here on three PoCL CPU devices, in one context (the
one-context path a two-GPU NVIDIA platform takes), in three contexts, and
with resident buffers; each run equals the single device's."""

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import zlib
    import numpy as np
    import clnn
    from clnn.executor import Executor
    from clnn.plan import Placement, Plan

    devices = clnn.select("portable")
    assert len(devices) == 3, devices
    ids = tuple(d.id for d in devices)

    def random_plan(model, rng):
        placements = {}
        for layer in model.layers:
            if layer.is_view:
                continue
            dims = [d for d in ("n", "c", "h") if layer.splittable(d)]
            if rng.integers(0, 4) == 0 or not dims:
                placements[layer.name] = Placement.whole(ids[rng.integers(0, 3)])
                continue
            shares = rng.dirichlet(np.ones(3))
            shares[rng.integers(0, 3)] *= rng.choice([0.0, 1.0])   # now and then a device gets nothing
            placements[layer.name] = Placement(ids, tuple(shares / shares.sum()), str(rng.choice(dims)))
        return Plan(model, placements, ids)

    for name, batch, plans in (("lenet5", 3, 4), ("squeezenet", 2, 2), ("resnet18", 1, 1)):
        model = clnn.models.get(name, batch=batch)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        x = rng.standard_normal(model.inputs[0].shape).astype(np.float32)
        (expected,) = Executor(model, Plan.single(model, devices[0]), devices[:1]).run({"input": x})
        for grouping, memory in (("platform", "auto"), ("device", "auto"), ("device", "discrete")):
            for _ in range(plans):
                plan = random_plan(model, rng)
                executor = Executor(model, plan, devices, grouping, memory)
                executor.poison()
                (actual,) = executor.run({"input": x})
                error = np.abs(actual - expected).max() / np.abs(expected).max()
                assert error < 1e-4, (name, grouping, memory, error, plan.table(model))
        print("random plans", name, "ok", flush=True)

    model = clnn.models.lenet5(batch=2)
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    session = clnn.InferenceSession(model, devices=devices, plan="auto")
    error = np.abs(session.run(None, {"input": x})[0] - model.reference({"input": x})[0]).max()
    assert error < 1e-4 and set(session.partition_report.single_times) == set(ids)
    print("auto ok", flush=True)
""")


def test_three_pocl_devices(tmp_path):
    env = dict(os.environ, POCL_DEVICES="pthread pthread pthread", CLNN_DEVICES="portable",
               CLNN_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" ok") == 4
