"""plan="auto": calibrate, choose every layer's placement, and verify that the
choice is not slower than the best single device.

The chosen plan (and the same without splits), the batch split at its best
share (Planner.batch_split) and the best single devices are timed after
planning, their runs in turns; the fastest is kept. A plan replaces the best
single device only where it measured at least 2 % faster: timing noise then
cannot leave a plan that is really more than 2 % slower. The report says
what was predicted, what was measured and why a fallback happened.
"""

from dataclasses import dataclass, field

from ..executor import Executor
from ..plan import Plan
from ..runtime.contexts import option
from ..timing import interleaved_medians, layer_times, random_feeds
from .calibrate import calibrate
from .planner import Planner, efficiency
from .tune import tune_untuned

TOLERANCE = 1.02  # a plan must beat the best single device by this factor
# single devices predicted this much slower than the best are not timed
TIME_SINGLES_WITHIN = 3.0
# CLNN_TUNE: "auto" tunes untuned devices before calibrating them (a minute or so per device, off by default)
TUNE_MODES = ("off", "auto")


@dataclass
class PartitionReport:
    plan_time: float
    predicted_time: float
    single_times: dict
    predicted_single: dict
    layer_predicted: dict
    layer_measured: dict
    calibration_seconds: float
    layers_measured: int
    fallback: str = ""
    timed: list = field(default_factory=list)

    @property
    def best_single(self):
        return min(self.single_times.values())

    @property
    def speedup(self):
        return self.best_single / self.plan_time

    @property
    def efficiency(self):
        return efficiency(self.single_times, self.plan_time)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return (f"PartitionReport(plan {self.plan_time * 1e3:.3f} ms, best single {self.best_single * 1e3:.3f} ms, "
                f"speedup {self.speedup:.2f}x{', fallback' if self.fallback else ''})")

    def table(self):
        lines = [f"plan: measured {self.plan_time * 1e3:.3f} ms, predicted {self.predicted_time * 1e3:.3f} ms; "
                 f"best single device {self.best_single * 1e3:.3f} ms; speedup {self.speedup:.2f}x; "
                 f"efficiency {self.efficiency:.2f}"]
        for device_id, seconds in self.single_times.items():
            how = "measured" if device_id in self.timed else "predicted"
            lines.append(f"  {device_id}: {seconds * 1e3:.3f} ms ({how}; predicted "
                         f"{self.predicted_single[device_id] * 1e3:.3f} ms)")
        if self.fallback:
            lines.append(f"  fallback: {self.fallback}")
        lines.append(f"  calibration: {self.calibration_seconds:.1f} s, {self.layers_measured} layer shapes measured")
        lines.append(f"  {'layer':<28} {'predicted ms':>12} {'measured ms':>12}")
        for name, predicted in self.layer_predicted.items():
            measured = self.layer_measured.get(name, float("nan"))
            lines.append(f"  {name:<28} {predicted * 1e3:12.3f} {measured * 1e3:12.3f}")
        return "\n".join(lines)


def _runs_for(predicted):
    return 15 if predicted < 0.01 else 7 if predicted < 0.1 else 3


def auto_plan(model, devices, grouping=None, memory=None, cache=None, progress=None, tune=None):
    """(Plan, PartitionReport or None): the calibrated choice for ``model``.
    ``tune`` (else CLNN_TUNE, default "off"): "auto" autotunes the devices
    that have no tuning of their own first (clnn.partition.tune)."""
    if option(tune, "CLNN_TUNE", TUNE_MODES, "off") == "auto":
        tune_untuned(devices)
    if len(devices) == 1:
        return Plan.single(model, devices[0]), None
    calibration = calibrate(model, devices, grouping, memory, cache, progress)
    planner = Planner(model, devices, calibration)
    predicted_single = {d.id: planner.single(d.id) for d in devices}
    best_predicted = min(predicted_single.values())
    # (label, plan, predicted seconds, predicted seconds per layer), in order of preference
    planned = [("planned", *planner.best())]
    if _splits(planned[0][1]):
        planned.append(("planned without splits", *Planner(model, devices, calibration, splits=False).best()))
    data_parallel = planner.batch_split()
    if data_parallel is not None:
        planned.append(("batch split", *data_parallel))
    timed = [d for d in devices if predicted_single[d.id] <= TIME_SINGLES_WITHIN * best_predicted]
    singles = [(d.id, Plan.single(model, d), predicted_single[d.id], planner.single_layers(d.id)) for d in timed]
    everything = singles + planned
    executors = [Executor(model, plan, devices, grouping, memory) for _, plan, _, _ in everything]
    feeds = random_feeds(model)
    times, _ = interleaved_medians([lambda e=e: e.run(feeds) for e in executors], _runs_for(best_predicted))
    best_single = min(range(len(timed)), key=lambda i: times[i])
    faster = [i for i in range(len(timed), len(everything)) if times[i] * TOLERANCE <= times[best_single]]
    chosen = min(faster, key=lambda i: times[i]) if faster else best_single
    fallback = ""
    planned_alone = planned[0][1].used_devices() == {timed[best_single].id}
    if chosen != len(timed) and not (chosen == best_single and planned_alone):
        fallback = fallback_text([label for label, *_ in everything], times, len(timed), best_single, chosen)
    label, plan, predicted, layer_predicted = everything[chosen]
    layer_measured = {name: max(per_device.values())
                      for name, per_device in layer_times(executors[chosen].timeline()).items()}
    single_times = dict(predicted_single, **{d.id: t for d, t in zip(timed, times)})
    report = PartitionReport(times[chosen], predicted, single_times, predicted_single, layer_predicted,
                             layer_measured, calibration.seconds, calibration.measured, fallback,
                             [d.id for d in timed])
    return plan, report


def fallback_text(labels, times, singles, best_single, chosen):
    """Why plan="auto" did not keep the planned placement: the times of every
    candidate measured (``labels`` and ``times`` in the same order, the
    ``singles`` single devices first, then the planned placement and its
    alternatives) and the one kept."""
    others = "".join(f", {labels[i]} {times[i] * 1e3:.3f} ms" for i in range(singles + 1, len(labels)))
    return (f"the planned placement measured {times[singles] * 1e3:.3f} ms against "
            f"{times[best_single] * 1e3:.3f} ms on {labels[best_single]} alone{others}; kept: {labels[chosen]}")


def _splits(plan):
    return any(p.dim is not None and sum(s > 0 for s in p.shares) > 1 for p in plan.placements.values())
