"""Transpose (any permutation up to rank 6: NCHW <-> NHWC, ShuffleNet's
channel shuffle), DepthToSpace (DCR and CRD) and SpaceToDepth (YOLOv2's
reorg): permutations of a view of up to six dims, each one N-D copy."""

import numpy as np

from ..errors import ModelError
from .nd import Axis, IndexMap, Rearrange, Space
from .registry import OpEntry


class Transpose(Rearrange):
    op = "Transpose"

    def __init__(self, name, inputs, perm=None):
        """``perm``: output dim k is input dim perm[k] (None reverses the dims)."""
        super().__init__(name, inputs)
        self.perm = None if perm is None else tuple(int(p) for p in perm)

    def describe(self):
        return f"Transpose {list(self.order)}"

    def infer(self, in_dims):
        dims = in_dims[0]
        self.order = self.perm if self.perm is not None else tuple(reversed(range(len(dims))))
        if sorted(self.order) != list(range(len(dims))):
            raise ModelError(f"Transpose node {self.name!r}: perm {list(self.order)} is not a permutation of the "
                             f"{len(dims)} dims of {list(dims)}")
        return tuple(dims[p] for p in self.order)

    def index_map(self):
        inp, out = self.spaces()
        return IndexMap(out, inp, [Axis(p) for p in self.order])

    def reference(self, x):
        return x.reshape(self.in_dims[0]).transpose(self.order).reshape(self.out_shape)

    def to_onnx(self, writer):
        writer.node(self, "Transpose", [self.inputs[0]], perm=list(self.order))


class DepthToSpace(Rearrange):
    """(N, C, H, W) -> (N, C / b^2, H * b, W * b): channel blocks move into
    b x b pixel blocks, depth-column-row (DCR, the default) or
    column-row-depth (CRD) ordered."""
    op = "DepthToSpace"

    def __init__(self, name, inputs, blocksize, mode="DCR"):
        super().__init__(name, inputs)
        self.blocksize, self.mode = int(blocksize), str(mode)
        if self.blocksize < 1 or self.mode not in ("DCR", "CRD"):
            raise ModelError(f"DepthToSpace node {name!r}: blocksize {blocksize} must be >= 1 and mode {mode!r} "
                             "DCR or CRD")

    def describe(self):
        return f"DepthToSpace {self.blocksize} {self.mode}"

    def infer(self, in_dims):
        n, c, h, w = _four_dims(self, in_dims[0])
        b = self.blocksize
        if c % (b * b):
            raise ModelError(f"DepthToSpace node {self.name!r}: {c} channels do not divide into {b}x{b} blocks")
        return (n, c // (b * b), h * b, w * b)

    def _blocked(self):
        """The input as (N, b, b, C', H, W) (DCR) or (N, C', b, b, H, W)."""
        n, c, h, w = self.in_dims[0]
        b = self.blocksize
        return (n, b, b, c // (b * b), h, w) if self.mode == "DCR" else (n, c // (b * b), b, b, h, w)

    def _perm(self):
        """Which dim of the blocked input each of (N, C', H, b, W, b) takes."""
        return (0, 3, 4, 1, 5, 2) if self.mode == "DCR" else (0, 1, 4, 2, 5, 3)

    def index_map(self):
        n, c, h, w = self.in_dims[0]
        b = self.blocksize
        out = Space((n, c // (b * b), h, b, w, b), self.out_shape)
        return IndexMap(out, Space(self._blocked(), self.in_shapes[0]), [Axis(p) for p in self._perm()])

    def reference(self, x):
        return x.reshape(self._blocked()).transpose(self._perm()).reshape(self.out_shape)

    def to_onnx(self, writer):
        writer.node(self, "DepthToSpace", [self.inputs[0]], blocksize=self.blocksize, mode=self.mode)


class SpaceToDepth(Rearrange):
    """(N, C, H, W) -> (N, C * b^2, H / b, W / b): each b x b pixel block
    becomes b^2 channel blocks, depth-column-row (DCR, the default: the
    inverse of DCR DepthToSpace) or column-row-depth (CRD, opset 28) ordered."""
    op = "SpaceToDepth"
    # which dim of the blocked input (N, C, H', b, W', b) each output dim takes
    PERMS = {"DCR": (0, 3, 5, 1, 2, 4),     # (N, b, b, C, H', W')
             "CRD": (0, 1, 3, 5, 2, 4)}     # (N, C, b, b, H', W')
    MODE_SINCE = 28                         # the opset that gave SpaceToDepth its mode

    def __init__(self, name, inputs, blocksize, mode="DCR"):
        super().__init__(name, inputs)
        self.blocksize, self.mode = int(blocksize), str(mode)
        if self.blocksize < 1 or self.mode not in self.PERMS:
            raise ModelError(f"SpaceToDepth node {name!r}: blocksize {blocksize} must be >= 1 and mode {mode!r} "
                             "DCR or CRD")

    def describe(self):
        return f"SpaceToDepth {self.blocksize} {self.mode}"

    def infer(self, in_dims):
        n, c, h, w = _four_dims(self, in_dims[0])
        b = self.blocksize
        if h % b or w % b:
            raise ModelError(f"SpaceToDepth node {self.name!r}: {h}x{w} pixels do not divide into {b}x{b} blocks")
        return (n, c * b * b, h // b, w // b)

    def _blocked(self):
        n, c, h, w = self.in_dims[0]
        b = self.blocksize
        return (n, c, h // b, b, w // b, b)

    def index_map(self):
        perm = self.PERMS[self.mode]
        blocked = self._blocked()
        out = Space(tuple(blocked[p] for p in perm), self.out_shape)
        return IndexMap(out, Space(blocked, self.in_shapes[0]), [Axis(p) for p in perm])

    def reference(self, x):
        return x.reshape(self._blocked()).transpose(self.PERMS[self.mode]).reshape(self.out_shape)

    def to_onnx(self, writer):
        if self.mode == "DCR":
            writer.node(self, "SpaceToDepth", [self.inputs[0]], blocksize=self.blocksize)
        elif writer.opset >= self.MODE_SINCE:
            writer.node(self, "SpaceToDepth", [self.inputs[0]], blocksize=self.blocksize, mode=self.mode)
        else:
            raise ModelError(f"SpaceToDepth node {self.name!r}: mode CRD needs opset {self.MODE_SINCE} or newer, "
                             f"not {writer.opset}")


def _four_dims(layer, dims):
    if len(dims) != 4:
        raise ModelError(f"{layer.op} node {layer.name!r}: input must be 4-D (NCHW), got {list(dims)}")
    return dims


def _transpose(node):
    perm = node.attr("perm")
    return Transpose(node.out, node.tensor(0), None if perm is None else np.array(perm))


def _depth_to_space(node):
    return DepthToSpace(node.out, node.tensor(0), _blocksize(node), node.attr("mode", "DCR"))


def _space_to_depth(node):
    return SpaceToDepth(node.out, node.tensor(0), _blocksize(node), node.attr("mode", "DCR"))


def _blocksize(node):
    size = node.attr("blocksize")
    if size is None:
        node.fail("attribute blocksize is required")
    return size


OP = OpEntry(layers=(Transpose, DepthToSpace, SpaceToDepth), sources=("nd",),
             onnx={"Transpose": _transpose, "DepthToSpace": _depth_to_space, "SpaceToDepth": _space_to_depth})
