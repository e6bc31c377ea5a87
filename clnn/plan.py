"""clnn.Plan: which device computes which share of each layer."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .box import Box
from .errors import PlanError

DIM_NAMES = {"n": "batch", "c": "channels", "h": "rows", None: "whole"}
FORMAT = "clnn-plan/2"
# shares typed by hand (0.33, 0.33, 0.34) may miss 1 by rounding
SHARES_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Placement:
    """A layer's split: ``devices`` (ids) take ``shares`` of dimension ``dim``
    (``"n"``, ``"c"`` or ``"h"``); one device and ``dim=None`` run it whole."""
    devices: tuple
    shares: tuple
    dim: object = None

    def __post_init__(self):
        if len(self.devices) != len(self.shares) or not self.devices:
            raise PlanError(f"placement needs one share per device, got {self.devices} and {self.shares}")
        if any(s < 0 for s in self.shares) or abs(sum(self.shares) - 1) > 1e-6:
            raise PlanError(f"shares must be >= 0 and sum to 1, got {self.shares}")
        if self.dim not in DIM_NAMES:
            raise PlanError(f"split dimension must be n, c, h or None, got {self.dim!r}")
        if self.dim is None and sum(s > 0 for s in self.shares) > 1:
            raise PlanError("a placement without a split dimension must give everything to one device")

    @classmethod
    def whole(cls, device_id):
        return cls((device_id,), (1.0,), None)

    def boxes(self, shape, granule=1):
        """(device id, box) for every device with a non-empty slice."""
        whole = Box.whole(shape)
        if self.dim is None:
            return [(self.devices[self.shares.index(max(self.shares))], whole)]
        extent = whole.range(self.dim)[1]
        bounds, total = [0], 0.0
        for index, share in enumerate(self.shares[:-1]):
            total += share
            if share == 0:  # rounding never hands work to a device given none
                cut = bounds[-1]
            elif sum(self.shares[index + 1:]) == 0:
                cut = extent
            else:
                cut = int(round(extent * total / granule)) * granule
            bounds.append(min(max(cut, bounds[-1]), extent))
        bounds.append(extent)
        return [(d, whole.with_range(self.dim, lo, hi))
                for d, lo, hi in zip(self.devices, bounds, bounds[1:]) if hi > lo]

    def to_json(self):
        return {"devices": list(self.devices), "shares": list(self.shares), "dim": self.dim}


def fingerprint(model):
    """Identifies a model's structure, so a plan made for another is refused;
    the batch size is left out: shares of a layer fit any batch."""
    text = ";".join(f"{layer.name}:{layer.op}:{layer.out_dims[1:]}" for layer in model.layers)
    return hashlib.sha1(f"{model.name}|{text}".encode()).hexdigest()[:16]


def _default_dim(layer, count):
    for dim in ("c", "h", "n"):
        extent = Box.whole(layer.out_shape).range(dim)[1]
        if layer.splittable(dim) and extent >= count * layer.granule(dim):
            return dim
    return None


class Plan:
    def __init__(self, model, placements, devices):
        """``model``: the graph planned for, or its fingerprint."""
        self.fingerprint = fingerprint(model) if not isinstance(model, str) else model
        self.devices = [getattr(d, "id", d) for d in devices]
        self.placements = dict(placements)
        for name, placement in self.placements.items():
            unknown = set(placement.devices) - set(self.devices)
            if unknown:
                raise PlanError(f"layer {name!r} is placed on {sorted(unknown)}, not among the plan's devices")

    @classmethod
    def single(cls, model, device):
        device_id = getattr(device, "id", device)
        return cls(model, {layer.name: Placement.whole(device_id) for layer in model.layers if not layer.is_view},
                   [device_id])

    @classmethod
    def static(cls, model, devices, shares):
        """The same shares on every layer that can be split (EngineCL's static
        scheduler); a layer that cannot goes whole to the largest share."""
        ids = [getattr(d, "id", d) for d in devices]
        if len(shares) != len(ids):
            raise PlanError(f"plan gives {len(shares)} share{'s' * (len(shares) != 1)} for {len(ids)} "
                            f"device{'s' * (len(ids) != 1)} ({', '.join(ids)})")
        total = float(sum(shares))
        if any(s < 0 for s in shares) or abs(total - 1) > SHARES_SUM_TOLERANCE:
            raise PlanError(f"shares must be >= 0 and sum to 1, got {list(shares)} (sum {total:g})")
        shares = tuple(float(s) / total for s in shares)
        biggest = ids[shares.index(max(shares))]
        placements = {}
        for layer in model.layers:
            if layer.is_view:
                continue
            dim = _default_dim(layer, sum(s > 0 for s in shares))
            placements[layer.name] = (Placement(tuple(ids), shares, dim) if dim
                                      else Placement.whole(biggest))
        return cls(model, placements, ids)

    def check(self, model, devices):
        """Refuse a plan made for another model or other devices."""
        if self.fingerprint != fingerprint(model):
            raise PlanError(f"this plan was made for another model (fingerprint {self.fingerprint}, "
                            f"model {model.name!r} has {fingerprint(model)})")
        have = {getattr(d, "id", d) for d in devices}
        missing = [d for d in self.devices if d not in have]
        if missing:
            raise PlanError(f"this plan uses devices {missing} that the session does not have "
                            f"({', '.join(sorted(have))})")
        layers = {layer.name for layer in model.layers if not layer.is_view}
        if set(self.placements) != layers:
            raise PlanError(f"this plan places {sorted(set(self.placements) ^ layers)[:5]} differently "
                            "from the model's layers")

    def used_devices(self):
        """Ids of the devices given work by some layer."""
        return {d for p in self.placements.values() for d, s in zip(p.devices, p.shares) if s > 0}

    def slices(self, layer):
        return self.placements[layer.name].boxes(layer.out_shape, self._granule(layer))

    def _granule(self, layer):
        dim = self.placements[layer.name].dim
        return layer.granule(dim) if dim else 1

    # persistence ----------------------------------------------------------------
    def to_json(self):
        return {"format": FORMAT, "model": self.fingerprint, "devices": self.devices,
                "layers": {n: p.to_json() for n, p in self.placements.items()}}

    def save(self, path):
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path):
        try:
            data = json.loads(Path(path).read_text())
            if data.get("format") == "clnn-plan/1":
                raise PlanError(f"{path} was saved by an older clnn, whose plans held the batch size; make it "
                                "again")
            if data.get("format") != FORMAT:
                raise PlanError(f"{path} is not a clnn plan (format {data.get('format')!r})")
            placements = {n: Placement(tuple(p["devices"]), tuple(p["shares"]), p["dim"])
                          for n, p in data["layers"].items()}
            return cls(data["model"], placements, data["devices"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PlanError(f"cannot read plan {path}: {exc}") from exc

    # display --------------------------------------------------------------------
    def table(self, model=None):
        rows = [("layer", "split", "devices and shares")]
        names = [layer.name for layer in model.layers if not layer.is_view] if model else list(self.placements)
        for name in names:
            p = self.placements[name]
            parts = ", ".join(f"{d} {s:.0%}" for d, s in zip(p.devices, p.shares) if s > 0)
            rows.append((name, DIM_NAMES[p.dim], parts))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self):
        return self.table()
