"""MatMul over batched operands: out = act(alpha * A @ B + bias), numpy's
matmul of two tensors, or of a tensor and a constant, of rank 2 to 6 with
batch broadcasting (ONNX MatMul beyond Dense's 2-D form, and Gemm with
transA, transB of a computed B, or both operands computed).

Each operand is addressed through four element strides, one per index of
the product (batch item n, inner batch b, row r and the reduced k for A;
n, b, k and column m for B), so one kernel reads row-major operands,
transposed 2-D ones, broadcast ones (stride 0) and constants. A stride of
-1 stands for the operand's storage batch stride, which only the executor
knows (a tensor may be a channel slice of a Concat's storage).
"""

import numpy as np

from ..box import Box
from ..errors import ModelError
from ..host import page_aligned
from .base import (OUT, In, Launch, Layer, Param, activation_args, activation_name, apply_activation, ceil_div,
                   grid_launch)
from .registry import OpEntry

BATCH = -1   # stride: the operand's storage batch stride
# rows x columns of the output tile each work-item computes; a Target's
# tuning parameters matmul.cpu.* and matmul.gpu.* (Tuning.op_params) override them
# (8 x 8 measured 4.7x faster than 1 x 1 on PoCL, 4x slower than Dense's GEMM)
TILES = {"cpu": {"RT": 8, "RM": 8}, "gpu": {"RT": 4, "RM": 4}}


def flat_box(n0, n1, lo, hi, shape):
    """The smallest box of a tensor of storage ``shape`` holding elements
    lo..hi (flat indices within a batch item) of items n0..n1."""
    _, c, h, w = shape
    c_lo, c_hi = lo // (h * w), (hi - 1) // (h * w) + 1
    if c_hi - c_lo == 1:
        return Box(n0, n1, c_lo, c_hi, lo % (h * w) // w, ((hi - 1) % (h * w)) // w + 1)
    return Box(n0, n1, c_lo, c_hi, 0, h)


class MatMul(Layer):
    op = "MatMul"
    applies_activation = True

    def __init__(self, name, inputs, constant=None, constant_first=False, trans_a=False, trans_b=False, alpha=1.0,
                 bias=None, activation=None):
        """``inputs``: the tensor operands, A then B (one where the other is
        ``constant``, which is B, or A with ``constant_first``);
        ``trans_a``/``trans_b``: a 2-D tensor operand is stored transposed
        (Gemm's transA/transB); ``bias``: one value per output column."""
        super().__init__(name, inputs)
        self.constant = None if constant is None else page_aligned(constant)
        self.constant_first = bool(constant_first)
        self.trans = (bool(trans_a), bool(trans_b))
        self.alpha = float(alpha)
        self.bias = None if bias is None else page_aligned(np.reshape(bias, -1))
        self.activation = activation
        self.reduced = None     # K, once bound
        self.strides = None     # ((a_sn, a_sb, a_sr, a_sk), (b_sn, b_sb, b_sk, b_sm)) once bound
        if self.constant is not None and self.constant.ndim < 2:
            raise ModelError(f"MatMul node {name!r}: the constant operand must have rank 2 or more, got shape "
                             f"{self.constant.shape}")
        if any(self.trans[i] and self.is_constant(i) for i in (0, 1)):
            raise ModelError(f"MatMul node {name!r}: transpose a constant operand before building the layer")

    @property
    def arity(self):
        return 1 if self.constant is not None else 2

    def is_constant(self, operand):
        return self.constant is not None and (operand == 0) == self.constant_first

    def describe(self):
        text = "MatMul" + (" const" if self.constant is not None else "")
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

    def operand_dims(self, in_dims):
        """The outside shapes of A and B as stored."""
        tensors = iter(in_dims)
        return [self.constant.shape if self.is_constant(i) else tuple(next(tensors)) for i in (0, 1)]

    def infer(self, in_dims):
        a, b = self.operand_dims(in_dims)
        if len(a) < 2 or len(b) < 2:
            raise ModelError(f"MatMul node {self.name!r}: operands of shapes {list(a)} and {list(b)}; clnn needs "
                             "rank 2 or more (no vector operands)")
        if any(self.trans) and (len(a) != 2 or len(b) != 2):
            raise ModelError(f"MatMul node {self.name!r}: transposed operands must be 2-D")
        (t, k), (k2, m) = (a[::-1] if self.trans[0] else a[-2:]), (b[::-1] if self.trans[1] else b[-2:])
        if k != k2:
            raise ModelError(f"MatMul node {self.name!r}: operands of shapes {list(a)} and {list(b)} do not "
                             f"multiply ({k} != {k2})")
        try:
            batch = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
        except ValueError:
            raise ModelError(f"MatMul node {self.name!r}: batch dimensions of {list(a)} and {list(b)} do not "
                             "broadcast") from None
        if self.bias is not None and self.bias.size != m:
            raise ModelError(f"MatMul node {self.name!r}: {self.bias.size} biases for {m} columns")
        out = tuple(batch) + (t, m)
        self.reduced = k
        self.strides = (self._strides(0, a, out, k), self._strides(1, b, out, k))
        return out

    def _strides(self, operand, dims, out, k):
        """Element strides of an operand over (n, b, r, k) for A or (n, b,
        k, m) for B, where n is the output's batch item and b its inner
        batch dims flattened (a 2-D output has neither: its rows are its
        batch items)."""
        rows, cols = dims[-2:]
        tensor = not self.is_constant(operand)
        if self.trans[operand]:      # a 2-D tensor stored transposed: its storage batch runs along k
            return (0, 0, 1, BATCH)
        if len(out) == 2:            # (rows, cols) @ (K, M): each 2-D tensor's rows are its batch items
            return (0, 0, BATCH if tensor else cols, 1)
        if len(dims) == 2:           # broadcast over every batch dim: a constant, or B's rows are its items
            if operand == 0 and tensor:
                raise ModelError(f"MatMul node {self.name!r}: a computed 2-D left operand {list(dims)} cannot be "
                                 f"broadcast over the batch of {list(out)}")
            return (0, 0, cols, 1) if operand == 0 else (0, 0, BATCH if tensor else cols, 1)
        aligned = (1,) * (len(out) - len(dims)) + tuple(dims)
        inner, out_inner = aligned[1:-2], out[1:-2]
        if tensor and len(dims) != len(out):
            raise ModelError(f"MatMul node {self.name!r}: a computed operand of shape {list(dims)} must have the "
                             f"output's rank {len(out)}")
        if inner != out_inner and any(d != 1 for d in inner):
            raise ModelError(f"MatMul node {self.name!r}: operand {list(dims)} broadcasts over part of the inner "
                             f"batch {list(out_inner)}; clnn needs all of it or none")
        per_b = rows * cols if inner == out_inner else 0
        per_n = 0 if aligned[0] == 1 else (BATCH if tensor else rows * cols * int(np.prod(inner)))
        return (per_n, per_b, cols, 1)

    def flops(self):
        return 2 * int(np.prod(self.out_dims)) * self.reduced

    def weights(self):
        found = {}
        if self.constant is not None:
            found["constant"] = self.constant
        if self.bias is not None:
            found["bias"] = self.bias
        return found

    def params(self, target):
        return {"constant": self.constant if self.constant is not None else np.zeros(1, np.float32),
                "bias": self.bias if self.bias is not None else np.zeros(1, np.float32)}

    def reference(self, *inputs):
        tensors = iter(x.reshape(d) for x, d in zip(inputs, self.in_dims))
        a, b = (self.constant if self.is_constant(i) else next(tensors) for i in (0, 1))
        a, b = (x.T if t else x for x, t in zip((a, b), self.trans))
        out = self.alpha * np.matmul(a.astype(np.float64), b.astype(np.float64))
        if self.bias is not None:
            out = out + self.bias
        return apply_activation(out, self.activation).reshape(self.out_shape)

    # slicing -------------------------------------------------------------------------
    def input_box(self, out_box, index):
        operand = 1 if (index == 1 or self.constant_first) else 0
        shape = self.in_shapes[index]
        sn, sb = self.strides[operand][:2]
        n0, n1 = (out_box.n0, out_box.n1) if sn == BATCH else (0, shape[0])
        if len(self.out_dims) == 2:     # 2-D operands, stored (rows, cols, 1, 1)
            if operand == 0:
                # A's rows are the output's; stored transposed, they are its channels
                return Box(0, shape[0], out_box.n0, out_box.n1, 0, 1) if self.trans[0] else \
                    Box(out_box.n0, out_box.n1, 0, shape[1], 0, 1)
            # B's columns are the output's channels; stored transposed, its rows
            return Box(out_box.c0, out_box.c1, 0, shape[1], 0, 1) if self.trans[1] else \
                Box(0, shape[0], out_box.c0, out_box.c1, 0, 1)
        if sb == 0:     # one matrix serves every inner batch item: all of it
            return Box(n0, n1, 0, shape[1], 0, shape[2])
        t, m = self.out_dims[-2:]
        _, _, h, w = self.out_shape
        first = (out_box.c0 * h + out_box.h0) * w
        last = ((out_box.c1 - 1) * h + out_box.h1) * w      # one past the last element of the box
        rows, cols = self.operand_dims(self.in_dims)[operand][-2:]
        if operand == 0:     # the rows of A under the output's rows
            return flat_box(n0, n1, first // m * cols, ((last - 1) // m + 1) * cols, shape)
        matrices = first // (t * m), (last - 1) // (t * m) + 1
        return flat_box(n0, n1, matrices[0] * rows * cols, matrices[1] * rows * cols, shape)

    def _operand_arg(self, operand):
        if self.is_constant(operand):
            return Param("constant")
        return In(1 if operand == 1 and self.constant is None else 0)

    def _matrices(self, box):
        """(n0, bn, e1, o1, e2, o2, Y, Z, r0, nr, m0, nm): the matrices of
        the output that ``box`` covers (batch items n0.. and inner batch
        indices ((o1 + i1) * Y + o2 + i2) * Z + i3 for i1 < e1, i2 < e2,
        i3 < Z), and the rows r0.. and columns m0.. it takes of each."""
        dims = self.out_dims
        t, m = dims[-2:]
        bn, bc, bh = box.n1 - box.n0, box.c1 - box.c0, box.h1 - box.h0
        if len(dims) == 2:      # stored (T, M, 1, 1)
            return (0, 1, 1, 0, 1, 0, 1, 1, box.n0, bn, box.c0, bc)
        if len(dims) == 3:      # stored (N, T, M, 1)
            return (box.n0, bn, 1, 0, 1, 0, 1, 1, box.c0, bc, box.h0, bh)
        if len(dims) == 4:      # stored (N, X, T, M)
            return (box.n0, bn, bc, box.c0, 1, 0, 1, 1, box.h0, bh, 0, m)
        # stored (N, X, Y, Z.. * T * M): a row of the storage holds whole matrices
        return (box.n0, bn, bc, box.c0, bh, box.h0, dims[2], int(np.prod(dims[3:-2])), 0, t, 0, m)

    def launches(self, target, box):
        n0, bn, e1, o1, e2, o2, y, z, r0, nr, m0, nm = self._matrices(box)
        t, m = self.out_dims[-2:]
        (a_sn, a_sb, a_sr, a_sk), (b_sn, b_sb, b_sk, b_sm) = self.strides
        o_sn, o_sb, o_sr = (0, 0, BATCH) if len(self.out_dims) == 2 else (BATCH, t * m, m)
        tile = target.tuned(f"matmul.{target.kind}", TILES[target.kind])
        size, local = grid_launch(target, (ceil_div(nm, tile["RM"]), ceil_div(nr, tile["RT"]), bn * e1 * e2 * z))
        args = {"out": OUT, "a": self._operand_arg(0), "b": self._operand_arg(1), "bias": Param("bias"),
                "K": self.reduced, "o_sn": o_sn, "o_sb": o_sb, "o_sr": o_sr, "a_sn": a_sn, "a_sb": a_sb,
                "a_sr": a_sr, "a_sk": a_sk, "b_sn": b_sn, "b_sb": b_sb, "b_sk": b_sk, "b_sm": b_sm, "n0": n0,
                "bn": bn, "e1": e1, "o1": o1, "e2": e2, "o2": o2, "Y": y, "Z": z, "r0": r0, "nr": nr, "m0": m0,
                "nm": nm, "scale": self.alpha, "has_bias": self.bias is not None, **activation_args(self.activation)}
        return [Launch("clnn_matmul_tiled", size, local, args, tuple(f"-D{k}={v}" for k, v in sorted(tile.items())))]

    # ONNX ------------------------------------------------------------------------------
    def to_onnx(self, writer):
        tensors = iter(self.inputs)
        a, b = (writer.const(self, "constant", self.constant) if self.is_constant(i) else next(tensors)
                for i in (0, 1))
        if len(self.out_dims) == 2:
            inputs = [a, b] + ([writer.const(self, "bias", self.bias)] if self.bias is not None else [])
            y = writer.node(self, "Gemm", inputs, alpha=self.alpha, transA=int(self.trans[0]),
                            transB=int(self.trans[1]))
        else:
            y = writer.node(self, "MatMul", [a, b])
            if self.alpha != 1:
                y = writer.node(self, "Mul", [y, writer.const(self, "alpha", np.float32(self.alpha))])
            if self.bias is not None:
                y = writer.node(self, "Add", [y, writer.const(self, "bias", self.bias)])
        writer.activation(self, y, self.activation)


OP = OpEntry(layers=(MatMul,), sources=("matmul",))
