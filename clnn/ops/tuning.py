"""Kernel parameters per device: the GPU GEMM tiles, when to split K, when
to take Winograd, how GEMV work-groups are shaped, the CPU convolution's
blocking, and overrides of other ops' kernel parameters (``op_params``).

A ``Tuning`` is a frozen, hashable value that a Target carries (see
base.py); layers choose their kernel variants and build options from it and
from the box they compute, never from module state. ``tuning_for(device)``
takes the device's own record in clnn's cache folder (written by ``clnn
tune`` or ``python -m clnn.autotune --save``, keyed like calibration by
the device, its driver and clnn's version), else its entry in ``TUNED``
(measured by hand, see benchmarks/gpu_kernels.py and clnn.autotune), else
``DEFAULT``. ``Tuning.with_overrides`` changes fields by name, as the
tools' ``--tune`` option gives them; a cached record holds every field by
those names, in the same text forms.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, fields, replace

from ..cache_files import RecordFiles, device_key, seconds
from ..errors import DeviceError, InputError

log = logging.getLogger("clnn")


@dataclass(frozen=True)
class GemmTile:
    """A GEMM work-group tile: TM x TN outputs (rows: output channels,
    columns: pixels or Winograd tiles), TK deep per staged step, RM x RN per
    work-item (multiples of 4: work-items read float4s from local memory)."""
    TM: int
    TN: int
    TK: int
    RM: int
    RN: int

    def __post_init__(self):
        wg_m, wg_n = self.TM // self.RM, self.TN // self.RN
        threads = wg_m * wg_n
        if (self.RM % 4 or self.RN % 4 or self.TM % self.RM or self.TN % self.RN
                or threads % self.TN or (self.TK * self.TM) % threads or (self.TK * self.TN) % threads):
            raise DeviceError(f"GEMM tile {self} is not valid: RM, RN must be multiples of 4 dividing TM, TN; "
                              "the work-group must span whole TN-wide rows and stage whole tiles")

    @classmethod
    def parse(cls, text):
        """A tile from its text form, TMxTNxTK/RMxRN (128x128x8/8x8)."""
        match = re.fullmatch(r"(\d+)x(\d+)x(\d+)/(\d+)x(\d+)", text.strip())
        if not match:
            raise InputError(f"a GEMM tile is written TMxTNxTK/RMxRN (e.g. 128x128x8/8x8), not {text!r}")
        return cls(*map(int, match.groups()))

    @property
    def local(self):
        """Work-group extent (columns, rows) = (TN / RN, TM / RM)."""
        return (self.TN // self.RN, self.TM // self.RM)

    @property
    def threads(self):
        return self.local[0] * self.local[1]

    @property
    def speed(self):
        """Relative throughput of one work-group slot: FMAs per element
        staged, a proxy that the cost model in clnn.ops.gemm compares."""
        return self.TM * self.TN / (self.TM + self.TN)

    def options(self):
        return ("-cl-mad-enable", f"-DTM={self.TM}", f"-DTN={self.TN}", f"-DTK={self.TK}",
                f"-DRM={self.RM}", f"-DRN={self.RN}")

    def __str__(self):
        return f"{self.TM}x{self.TN}x{self.TK}/{self.RM}x{self.RN}"


@dataclass(frozen=True)
class GemvShape:
    """Work-group of the GPU GEMV kernel for boxes of up to ``max_batch``
    batch items: LS work-items, KL of them along K (each reads float4s of a
    weight row), LS / KL row groups of RR rows each."""
    max_batch: int
    LS: int
    KL: int
    RR: int

    def __post_init__(self):
        if self.LS % self.KL or self.KL & (self.KL - 1) or self.LS // self.KL > 4:
            raise DeviceError(f"GEMV shape {self} is not valid: KL must be a power of two dividing LS, "
                              "with at most 4 row groups")

    @classmethod
    def parse(cls, text):
        """A shape from its text form, bMAX/LS../KL../RR.. (b16/LS256/KL64/RR4)."""
        match = re.fullmatch(r"b(\d+)/LS(\d+)/KL(\d+)/RR(\d+)", text.strip())
        if not match:
            raise InputError(f"a GEMV shape is written bMAXBATCH/LSn/KLn/RRn (e.g. b16/LS256/KL64/RR4), "
                             f"not {text!r}")
        return cls(*map(int, match.groups()))

    @property
    def rows(self):
        """Output features per work-group."""
        return self.LS // self.KL * self.RR

    def __str__(self):
        return f"b{self.max_batch}/LS{self.LS}/KL{self.KL}/RR{self.RR}"


@dataclass(frozen=True)
class CpuBlocks:
    """Blocking of the CPU convolutions (clnn.ops.conv_cpu) on vectors of 8
    floats (AVX2): MR output channels per register block; the GEMM
    (kernels/conv_cpu.cl) packs KC im2col rows at a time for at most NB
    blocks of 16 pixels and, where K takes several chunks, at most PBNB
    panels x blocks (the sums it keeps between chunks); Winograd
    (kernels/conv_winograd_cpu.cl) transforms WKC input channels at a time
    and takes at most TB blocks of 16 tiles and TPB blocks x panels. On
    vectors of 16 floats (AVX-512) the register block is as many bytes: MR
    doubles, the block counts halve (``for_width``)."""
    MR: int = 6
    KC: int = 128
    NB: int = 8
    PBNB: int = 64
    WKC: int = 8
    TB: int = 1
    TPB: int = 16

    def __post_init__(self):
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in vars(self).values()):
            raise DeviceError(f"CPU blocking {self} is not valid: every count must be an integer >= 1")

    def for_width(self, vector_width):
        """(GEMM blocking, Winograd blocking) as the kernels' build options
        name them, for vectors of ``vector_width`` floats (8 or 16)."""
        up = vector_width // 8

        def down(count):
            return max(count // up, 1)
        return ({"MR": self.MR * up, "KC": self.KC, "NB": down(self.NB), "PBNB": down(self.PBNB)},
                {"MR": self.MR * up, "KC": self.WKC, "TB": down(self.TB), "TPB": down(self.TPB)})


@dataclass(frozen=True)
class Tuning:
    # GEMM tiles that convolutions (and dense layers past the GEMV batch)
    # may take; a cost model picks one per box, with a K split
    conv_tiles: tuple = (GemmTile(128, 128, 8, 8, 8), GemmTile(64, 128, 8, 4, 8), GemmTile(64, 64, 16, 4, 4))
    # work-groups one compute unit runs at once (sizes a wave)
    wg_per_cu: int = 2
    # split K over at most this many work-groups, each keeping at least
    # min_split_steps TK-deep steps
    max_split: int = 32
    min_split_steps: int = 4
    # Winograd F(m x m, 3 x 3) output tile for 3x3 stride-1 convolutions
    # (4, 2, or 0 for never), taken where the layer has enough input
    # channels and tiles that the transforms pay off
    winograd: int = 4
    winograd_min_channels: int = 32
    winograd_min_tiles: int = 128
    # GEMV work-group shapes, by the batch they serve (first that fits)
    gemv: tuple = (GemvShape(2, 256, 64, 2), GemvShape(16, 256, 64, 4))
    # extra build options of the GEMM kernels, for one driver (NVIDIA's
    # OpenCL takes -cl-nv-maxrregcount=128: two 256-work-item groups per SM)
    build_options: tuple = ()
    # the CPU convolutions' blocking
    cpu_blocks: CpuBlocks = CpuBlocks()
    # ((name, value), ...) sorted: parameters of OP_PARAMS whose defaults
    # the op modules keep (by device kind or size); Target.tuned applies them
    op_params: tuple = ()

    def __post_init__(self):
        if (self.winograd not in (0, 2, 4) or not self.conv_tiles or not self.gemv
                or min(self.wg_per_cu, self.max_split, self.min_split_steps) < 1):
            raise DeviceError(f"tuning {self} is not valid: winograd must be 4, 2 or 0; conv_tiles and gemv "
                              "must not be empty; wg_per_cu, max_split and min_split_steps must be >= 1")

    def gemv_shape(self, batch):
        for shape in self.gemv:
            if batch <= shape.max_batch:
                return shape
        return self.gemv[-1]

    def with_overrides(self, values):
        """This tuning with fields changed: ``values`` maps a field name
        (``cpu_blocks.PB`` for a field of the CPU blocking) to a value, or to
        its text as a command line gives it: an integer; tiles and GEMV
        shapes in their text forms (GemmTile.parse, GemvShape.parse) joined
        by "+"; build options separated by spaces. InputError names an
        unknown field or a value that does not read."""
        changes, blocks, ops = {}, {}, dict(self.op_params)
        for name, value in values.items():
            group, _, field = name.rpartition(".")
            if group == "cpu_blocks" and field in _names(CpuBlocks):
                blocks[field] = _read_int(name, value)
            elif field in OP_PARAMS.get(group, ()):
                ops[name] = _read_int(name, value)
            elif not group and field in _names(Tuning) and field not in ("cpu_blocks", "op_params"):
                changes[field] = _READERS.get(field, _read_int)(name, value)
            else:
                known = ([n for n in _names(Tuning) if n not in ("cpu_blocks", "op_params")]
                         + [f"cpu_blocks.{n}" for n in _names(CpuBlocks)]
                         + [f"{group}.{n}" for group, names in OP_PARAMS.items() for n in names])
                raise InputError(f"no tuning parameter {name!r}; the parameters are {', '.join(known)}")
        if blocks:
            changes["cpu_blocks"] = replace(self.cpu_blocks, **blocks)
        if ops:
            changes["op_params"] = tuple(sorted(ops.items()))
        return replace(self, **changes)


# the parameters op_params may set, by group: MatMul's output tile per
# work-item (clnn.ops.matmul), ConvTranspose's channel block
# (clnn.ops.conv_transpose), when the row kernels take a work-group per
# group (clnn.ops.nd.groups_limits)
OP_PARAMS = {
    "matmul.cpu": ("RT", "RM"), "matmul.gpu": ("RT", "RM"),
    "conv_transpose.cpu": ("CB",), "conv_transpose.gpu": ("CB",),
    "rows": ("groups_from", "groups_below"),
}


def _names(cls):
    return [f.name for f in fields(cls)]


def _read_int(name, value):
    try:
        return int(value) if isinstance(value, str) else value
    except ValueError:
        raise InputError(f"tuning parameter {name} takes an integer, not {value!r}") from None


def _read_many(parse):
    def read(name, value):
        return tuple(parse(part) for part in value.split("+")) if isinstance(value, str) else tuple(value)
    return read


_READERS = {
    "conv_tiles": _read_many(GemmTile.parse),
    "gemv": _read_many(GemvShape.parse),
    "build_options": lambda name, value: tuple(value.split()) if isinstance(value, str) else tuple(value),
}

DEFAULT = Tuning()

# Measured per-device tunings, keyed by the device name as the driver
# reports it (clnn.autotune finds them; benchmarks/gpu_kernels.py shows
# each candidate beside torch).
TUNED = {
    # python -m clnn.autotune --devices nvidia --runs 5 (2026-12-02, driver 580):
    # representative layers 0.764 ms with DEFAULT, 0.689 ms with this
    "NVIDIA H200": replace(DEFAULT, conv_tiles=(GemmTile(128, 64, 16, 8, 4), GemmTile(64, 128, 8, 4, 8),
                                                GemmTile(64, 64, 16, 4, 4)),
                           wg_per_cu=4, winograd=2, winograd_min_tiles=32),
}


def tuning_for(device):
    """The tuning for ``device`` (a clnn Device): see ``tuning_source``."""
    return tuning_source(device)[0]


class TuningCache(RecordFiles):
    FOLDER = "tuning"
    FORMAT = "clnn-tuning/1"
    WHAT = "tuning"
    INSTEAD = "using clnn's own tuning for the device"
    INSTEAD_PART = "ignoring the file, " + INSTEAD


# the records tuning_source read, by path: (the file's stamp, Tuning or None)
_READ = {}


def tuning_source(device):
    """(tuning, where it comes from) for ``device``: "cache" (its record in
    clnn's cache folder), "table" (its name in TUNED) or "default". A record
    is read again only when its file changes."""
    files, key = TuningCache(), device_key(device)
    path, stamp = str(files.path(key)), files.stamp(key)
    fresh = path not in _READ or _READ[path][0] != stamp
    if fresh:
        record = files.load(key, clean_tuning_record) if stamp is not None else {}
        _READ[path] = (stamp, read_tuning(record["tuning"]) if record else None)
    cached = _READ[path][1]
    found = ((cached, "cache") if cached is not None else (TUNED[device.name], "table") if device.name in TUNED
             else (DEFAULT, "default"))
    if fresh:
        log.debug("tuning of %s: %s", device.id, {"cache": f"its record {path}", "table": "clnn's table (TUNED)",
                                                  "default": "the default (no record or table entry)"}[found[1]])
    return found


def save_tuning(device, tuning, start_seconds, tuned_seconds, directory=None):
    """Store ``tuning`` as ``device``'s record (with what the representative
    layers took under the tuning it started from and under this one); the
    file's path, or None where the folder could not be written (the record
    then serves this process)."""
    files, key = TuningCache(directory), device_key(device)
    record = {"tuning": tuning_record(tuning), "start_seconds": start_seconds, "tuned_seconds": tuned_seconds}
    _READ.pop(str(files.path(key)), None)
    return files.save(key, record)


def tuning_record(tuning):
    """``tuning`` as a record: every field by the name with_overrides takes
    (``cpu_blocks.MR``, ``matmul.gpu.RT`` for those set), in its text form."""
    record = {}
    for name in _names(Tuning):
        value = getattr(tuning, name)
        if name == "cpu_blocks":
            record.update({f"cpu_blocks.{n}": getattr(value, n) for n in _names(CpuBlocks)})
        elif name == "op_params":
            record.update(dict(value))
        elif name in _TEXT:
            record[name] = _TEXT[name](value)
        else:
            record[name] = value
    return record


def tuning_digest(tuning):
    """A short text that differs between tunings (what a calibration of the
    kernels a tuning picks is keyed by)."""
    return hashlib.sha1(json.dumps(tuning_record(tuning), sort_keys=True).encode()).hexdigest()[:12]


def read_tuning(values):
    """The Tuning a record's fields (tuning_record's form) give."""
    return DEFAULT.with_overrides(values)


def clean_tuning_record(record):
    """(``record`` if every part of it fits the schema, else {}, [what is
    wrong, field by field]): a tuning is taken whole or not at all."""
    problems = []
    if seconds(record.get("start_seconds")) is None or seconds(record.get("tuned_seconds")) is None:
        problems.append("start_seconds and tuned_seconds are not numbers of seconds")
    given = record.get("tuning")
    if not isinstance(given, dict):
        return {}, problems + [f"its tuning is a {type(given).__name__}, not a table of fields"]
    required = [n for n in tuning_record(DEFAULT) if n.rpartition(".")[0] not in OP_PARAMS]
    problems += [f"field {name} is missing" for name in required if name not in given]
    for name, value in given.items():
        text = name in _TEXT
        if not isinstance(value, str if text else int) or isinstance(value, bool):
            problems.append(f"field {name} is {value!r}, not {'text' if text else 'an integer'}")
            continue
        try:
            DEFAULT.with_overrides({name: value})
        except (InputError, DeviceError) as exc:
            problems.append(f"field {name}: {exc}")
    if not problems:
        try:
            read_tuning(given)
        except DeviceError as exc:
            problems.append(str(exc))
    return ({}, problems) if problems else (record, [])


# the fields a record holds as text (the others are integers)
_TEXT = {"conv_tiles": lambda tiles: "+".join(map(str, tiles)), "gemv": lambda shapes: "+".join(map(str, shapes)),
         "build_options": " ".join}
