"""Predicted kernel time of a slice of a layer on one device.

Where the layer's shape was measured, times are interpolated between the
measured shares (times are far from linear in the share at small shares,
where fixed costs dominate). Other shapes are predicted by a latency model
per kernel and device, t = a + b * FLOPs + c * bytes with non-negative
coefficients fitted on every measured slice of that kernel (least relative
squares); the model is trusted only where it fits its own points well and
the shape lies within the range it was fitted on.
"""

import numpy as np

from ..box import Box
from ..cache_files import seconds
from ..ops.base import Target

MIN_POINTS = 4
MAX_MEDIAN_ERROR = 0.25
RANGE = 4.0


def signature(layer):
    """Identifies a layer shape: equal signatures cost the same."""
    attrs = getattr(layer, "attrs", None)
    return "|".join(map(str, (type(layer).__name__, layer.describe(), layer.in_shapes, layer.out_shape, attrs)))


def family(layer, device):
    """The kernel that computes ``layer`` on ``device``: one latency model each."""
    return layer.launches(Target.of(device), Box.whole(layer.out_shape))[0].kernel


def features(flops, nbytes):
    return np.array([1.0, flops * 1e-9, nbytes * 1e-9])


def record_of(layer, device, times):
    return {"family": family(layer, device), "flops": layer.flops(), "bytes": layer.bytes(),
            "times": {str(share): seconds for share, seconds in times.items()}}


def clean_layers(layers):
    """(the entries of a record's "layers" that fit their schema, [what was
    dropped]): a family name, non-negative flops and bytes, and times in
    seconds for shares in (0, 1]."""
    if not isinstance(layers, dict):
        return {}, [f"layers is a {type(layers).__name__}, not a table"]
    kept, dropped = {}, []
    for key, entry in layers.items():
        if _entry_fits(entry):
            kept[key] = entry
        else:
            dropped.append(f"layer entry {str(key)[:60]!r} does not fit its schema")
    return kept, dropped


def _entry_fits(entry):
    if not isinstance(entry, dict) or not isinstance(entry.get("family"), str):
        return False
    if seconds(entry.get("flops")) is None or seconds(entry.get("bytes")) is None:
        return False
    times = entry.get("times")
    if not isinstance(times, dict) or not times:
        return False
    for share, value in times.items():
        try:
            share = float(share)
        except (TypeError, ValueError):
            return False
        if not 0 < share <= 1 or seconds(value) is None:
            return False
    return True


def interpolate(times, share):
    """Seconds at ``share`` from {share: seconds} measured points."""
    if share <= 0:
        return 0.0
    points = sorted(times.items())
    shares = [s for s, _ in points]
    values = [t for _, t in points]
    if share <= shares[0]:
        if len(points) > 1:  # the line through the two smallest shares, kept between 0 and the first point
            slope = (values[1] - values[0]) / (shares[1] - shares[0])
            intercept = min(max(values[0] - slope * shares[0], 0.0), values[0])
        else:
            intercept = 0.0
        return intercept + (values[0] - intercept) * share / shares[0]
    return float(np.interp(share, shares, values))


class DeviceCosts:
    """Kernel times of layer slices on one device, from its calibration record."""

    def __init__(self, device, record):
        self.device = device
        self.layers = record.setdefault("layers", {})
        self._models = {}

    def measured(self, layer):
        entry = self.layers.get(signature(layer))
        return None if entry is None else {float(s): t for s, t in entry["times"].items()}

    def add(self, layer, times):
        self.layers[signature(layer)] = record_of(layer, self.device, times)
        self._models.clear()

    def _model(self, kernel):
        if kernel not in self._models:
            rows, targets, sizes = [], [], []
            for entry in self.layers.values():
                if entry["family"] != kernel:
                    continue
                for share, seconds in entry["times"].items():
                    share = float(share)
                    rows.append(features(entry["flops"] * share, entry["bytes"] * share))
                    targets.append(seconds)
                    sizes.append(entry["flops"] * share)
            model = None
            if len(rows) >= MIN_POINTS:
                from scipy.optimize import nnls  # on use: scipy.optimize adds 16 MB to every process
                a, t = np.array(rows), np.array(targets)
                coefficients, _ = nnls(a / t[:, None], np.ones(len(t)))
                error = np.median(np.abs(a @ coefficients - t) / t)
                if error <= MAX_MEDIAN_ERROR:
                    model = (coefficients, min(sizes) / RANGE, max(sizes) * RANGE)
            self._models[kernel] = model
        return self._models[kernel]

    def confident(self, layer):
        """Whether ``layer`` can be predicted without measuring it."""
        model = self._model(family(layer, self.device))
        return model is not None and model[1] <= layer.flops() <= model[2]

    def time(self, layer, share):
        """Seconds of the kernels computing ``share`` of ``layer``."""
        if share <= 0:
            return 0.0
        times = self.measured(layer)
        if times is not None:
            return interpolate(times, share)
        coefficients, _, _ = self._model(family(layer, self.device))
        return float(features(layer.flops() * share, layer.bytes() * share) @ coefficients)
