"""Boxes: the regions of an NCHW tensor that layers compute and devices share.

A box is a range of batch items, of channels and of rows, always with whole
rows (every column). Every slice a device computes, every region a layer
reads and every region copied between contexts is a box.
"""

from dataclasses import dataclass

from .errors import ModelError

DIMS = ("n", "c", "h")


@dataclass(frozen=True)
class Box:
    n0: int
    n1: int
    c0: int
    c1: int
    h0: int
    h1: int

    @classmethod
    def whole(cls, shape):
        n, c, h, _ = shape
        return cls(0, n, 0, c, 0, h)

    def range(self, dim):
        return {"n": (self.n0, self.n1), "c": (self.c0, self.c1), "h": (self.h0, self.h1)}[dim]

    def with_range(self, dim, lo, hi):
        ranges = {d: self.range(d) for d in DIMS}
        ranges[dim] = (lo, hi)
        return Box(*ranges["n"], *ranges["c"], *ranges["h"])

    @property
    def empty(self):
        return self.n1 <= self.n0 or self.c1 <= self.c0 or self.h1 <= self.h0

    def count(self, width):
        """Number of elements, for rows ``width`` wide."""
        if self.empty:
            return 0
        return (self.n1 - self.n0) * (self.c1 - self.c0) * (self.h1 - self.h0) * width

    def intersect(self, other):
        """The common part, or None when they do not overlap."""
        box = Box(max(self.n0, other.n0), min(self.n1, other.n1),
                  max(self.c0, other.c0), min(self.c1, other.c1),
                  max(self.h0, other.h0), min(self.h1, other.h1))
        return None if box.empty else box

    def contains(self, other):
        return all(a0 <= b0 and b1 <= a1
                   for (a0, a1), (b0, b1) in ((self.range(d), other.range(d)) for d in DIMS))

    def subtract(self, other):
        """Disjoint boxes covering self minus other."""
        cut = self.intersect(other)
        if cut is None:
            return [self]
        pieces, rest = [], self
        for dim in DIMS:
            lo, hi = rest.range(dim)
            clo, chi = cut.range(dim)
            if lo < clo:
                pieces.append(rest.with_range(dim, lo, clo))
            if chi < hi:
                pieces.append(rest.with_range(dim, chi, hi))
            rest = rest.with_range(dim, clo, chi)
        return pieces

    def shifted_channels(self, offset):
        return Box(self.n0, self.n1, self.c0 + offset, self.c1 + offset, self.h0, self.h1)

    def __str__(self):
        return f"n{self.n0}:{self.n1} c{self.c0}:{self.c1} h{self.h0}:{self.h1}"


def subtract_all(box, others):
    """The parts of ``box`` covered by none of ``others``."""
    pieces = [box]
    for other in others:
        pieces = [p for piece in pieces for p in piece.subtract(other)]
    return pieces


@dataclass(frozen=True)
class Geometry:
    """A box as a strided 3-D byte region of an NCHW float32 array: runs of
    ``region[0]`` bytes (rows of one channel), ``region[1]`` channels apart by
    ``row_pitch``, ``region[2]`` batch items apart by ``slice_pitch``."""

    origin: tuple
    region: tuple
    row_pitch: int
    slice_pitch: int

    @property
    def offset(self):
        """Byte offset of the first element."""
        return self.origin[0] + self.origin[1] * self.row_pitch + self.origin[2] * self.slice_pitch


def geometry(box, shape, itemsize=4):
    """The strided region of ``box`` inside an array of NCHW ``shape``, with
    contiguous dimensions merged: a box of whole rows copies channels as one
    run, a box of whole channels copies batch items as one run (else a
    (N, F, 1, 1) tensor would cross as F rows of 4 bytes)."""
    n, c, h, w = shape
    plane, item = h * w * itemsize, c * h * w * itemsize
    if (box.h0, box.h1) != (0, h):
        return Geometry(origin=(box.h0 * w * itemsize, box.c0, box.n0),
                        region=((box.h1 - box.h0) * w * itemsize, box.c1 - box.c0, box.n1 - box.n0),
                        row_pitch=plane, slice_pitch=item)
    if (box.c0, box.c1) != (0, c):
        return Geometry(origin=(box.c0 * plane, box.n0, 0), region=((box.c1 - box.c0) * plane, box.n1 - box.n0, 1),
                        row_pitch=item, slice_pitch=item * n)
    return Geometry(origin=(box.n0 * item, 0, 0), region=((box.n1 - box.n0) * item, 1, 1),
                    row_pitch=item * n, slice_pitch=item * n)


MAX_RANK = 6


def to4d(dims):
    """The NCHW storage shape of a tensor of outside shape ``dims`` (rank 0
    to 6): missing trailing dimensions are 1, dimensions past the fourth
    merge into the last (they are contiguous), so batch, channel and row
    boxes keep their meaning and rows stay whole."""
    dims = tuple(int(d) for d in dims)
    if len(dims) > MAX_RANK:
        raise ModelError(f"tensors of rank {len(dims)} ({dims}) are not supported; the largest rank is {MAX_RANK}")
    if len(dims) <= 4:
        return dims + (1,) * (4 - len(dims))
    width = 1
    for d in dims[3:]:
        width *= d
    return dims[:3] + (width,)
