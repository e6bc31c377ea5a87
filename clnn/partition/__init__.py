"""Placement of every layer on the devices: plan="auto"."""

from ..plan import Plan

KIND_ORDER = {"gpu": 0, "accelerator": 1, "cpu": 2}


def auto_plan(model, devices):
    """The whole model on the device most likely to be fastest: a GPU before
    a CPU (calibration-free first policy)."""
    best = min(devices, key=lambda d: (KIND_ORDER.get(d.kind, 3), -d.compute_units))
    return Plan.single(model, best)
