"""Dense (ONNX Gemm, 2-D MatMul with constant weights): the implicit GEMM of
a 1x1 convolution over (N, K, 1, 1), or, at small batch where reading the
weights is the whole cost, a GEMV kernel that streams each weight row once.
The other forms of Gemm and MatMul (batched, transposed or computed
operands) are clnn.ops.matmul's MatMul; the converters here pick, and put
views around them for vector operands and an Add after for a Gemm C fuller
than one value per column."""


import numpy as np

from ..errors import ModelError
from ..host import page_aligned
from .base import (OUT, Attrs, In, Launch, Layer, Param, activation_args, activation_name, apply_activation,
                   ceil_div, flat_launch, onnx_need_rank, pow2_at_least)
from . import conv_cpu
from .conv import gemm_launches, gemm_params, ktab
from .eltwise import Binary
from .matmul import MatMul
from .registry import OpEntry
from .reshape import Reshape

# batches up to these sizes take the GEMV kernels: a GPU reads the weights
# once for up to 16 rows; a CPU's tiled kernel already works on 16 at once
GEMV_MAX_BATCH = {"gpu": 16, "cpu": 4}
_ONE_BY_ONE = Attrs(kernel=(1, 1))


class Dense(Layer):
    op = "Gemm"
    applies_activation = True

    def __init__(self, name, inputs, weight, bias=None, activation=None):
        """``weight``: (out_features, in_features), as torch.nn.Linear holds it."""
        super().__init__(name, inputs)
        self.weight = page_aligned(weight)
        if self.weight.ndim != 2:
            raise ModelError(f"Gemm node {name!r}: weight must be 2-D, got shape {self.weight.shape}")
        self.bias = None if bias is None else page_aligned(np.reshape(bias, -1))
        if self.bias is not None and self.bias.shape[0] != self.weight.shape[0]:
            raise ModelError(f"Gemm node {name!r}: {self.bias.shape[0]} biases for {self.weight.shape[0]} outputs")
        self.activation = activation

    def describe(self):
        text = f"Dense {self.weight.shape[1]}->{self.weight.shape[0]}"
        if self.activation:
            text += f" {activation_name(self.activation)}"
        return text

    def infer(self, in_dims):
        """(N, K), or (N, K, 1, ...) as a global pool leaves it, gives (N, M)."""
        dims = in_dims[0]
        if len(dims) < 2 or any(d != 1 for d in dims[2:]):
            raise ModelError(f"Gemm node {self.name!r}: input must be 2-D (N, {self.weight.shape[1]}); got shape "
                             f"{list(dims)} (flatten it first)")
        if dims[1] != self.weight.shape[1]:
            raise ModelError(f"Gemm node {self.name!r}: input has {dims[1]} features, weights expect "
                             f"{self.weight.shape[1]}")
        return (dims[0], self.weight.shape[0])

    def flops(self):
        return 2 * self.out_shape[0] * self.weight.size

    def weights(self):
        found = {"weight": self.weight}
        if self.bias is not None:
            found["bias"] = self.bias
        return found

    def reference(self, x):
        out = x.reshape(x.shape[0], -1).astype(np.float64) @ self.weight.T.astype(np.float64)
        if self.bias is not None:
            out = out + self.bias
        return apply_activation(out, self.activation).reshape(self.out_shape)

    # slicing -----------------------------------------------------------------------
    def input_box(self, out_box, index):
        return out_box.with_range("c", 0, self.in_shapes[0][1])

    def granule(self, dim):
        return 4 if dim == "c" else 1

    def uses_gemv(self, target):
        return self.out_shape[0] <= GEMV_MAX_BATCH[target.kind]

    def params(self, target):
        if self.uses_gemv(target):
            w = self.weight
            if target.kind == "gpu":  # rows of whole float4s
                w = np.concatenate([w, np.zeros((w.shape[0], -w.shape[1] % 4), np.float32)], axis=1)
            bias = self.bias if self.bias is not None else np.zeros(1, np.float32)
            return {"w": page_aligned(w), "bias": bias}
        return gemm_params(target, self.weight, self.bias, ktab(self.weight.shape[1], 1, 1, 1, 1))

    def launches(self, target, box):
        bc, bn, k = box.c1 - box.c0, box.n1 - box.n0, self.weight.shape[1]
        args = {"out": OUT, "x": In(0), "w": Param("w"), "bias": Param("bias"), "K": k, "n0": box.n0, "bn": bn,
                "c0": box.c0, "bc": bc, **activation_args(self.activation), "has_bias": self.bias is not None}
        if not self.uses_gemv(target):
            if target.kind == "cpu" and bn <= GEMV_MAX_BATCH["cpu"]:
                # a few items of a larger batch: stream the GEMM's packed panels once
                mr = conv_cpu.gemm_blocks(target)["MR"]
                return [Launch("clnn_gemv_panels_cpu", (conv_cpu.box_panels(box, mr),), (1,), args,
                               ("-cl-mad-enable", f"-DMR={mr}", f"-DNB={GEMV_MAX_BATCH['cpu']}"))]
            return gemm_launches(target, box, self.in_shapes[0], self.out_shape, k, _ONE_BY_ONE,
                                 self.bias is not None, None, self.activation)
        if target.kind == "gpu":
            shape = target.tuning.gemv_shape(bn)
            nb = min(pow2_at_least(bn), GEMV_MAX_BATCH["gpu"])
            return [Launch("clnn_gemv_gpu", (ceil_div(bc, shape.rows) * shape.LS,), (shape.LS,),
                           dict(args, K4=ceil_div(k, 4)),
                           (f"-DLS={shape.LS}", f"-DKL={shape.KL}", f"-DRR={shape.RR}", f"-DNB={nb}"))]
        size, local = flat_launch(target, bc)
        return [Launch("clnn_gemv_cpu", size, local, args)]

    # ONNX ----------------------------------------------------------------------------
    def to_onnx(self, writer):
        weights = [writer.const(self, k, v) for k, v in self.weights().items()]
        y = writer.node(self, "Gemm", [writer.with_rank(self, self.inputs[0], 2), *weights], transB=1)
        writer.activation(self, y, self.activation)


def _from_gemm(node):
    trans_a, trans_b = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if node.is_constant(0) and node.is_constant(1):
        node.fail("A and B are both constants; fold them before importing")
    c = node.constant(2, "C") if node.has(2) else None
    # C of one value per column is the layer's bias; a fuller one, (M, N) or (M, 1), an Add after it
    per_column = c is not None and (c.size == 1 or c.shape[-1] == c.size)
    name = node.out if c is None or per_column else f"{node.out}/product"
    if not trans_a and node.is_constant(1):
        x = node.tensor(0)
        onnx_need_rank(node, x, 2)
        b = node.constant(1, "B")
        if b.ndim != 2:
            node.fail(f"B must be 2-D, got shape {list(b.shape)}")
        weight = b if trans_b else b.T
        if alpha != 1.0:  # a product is a copy of the weights: only where it changes them
            weight = alpha * weight
        bias = beta * _bias_vector(node, c, weight.shape[0]) if per_column else None
        layer = Dense(name, x, weight, bias)
    else:
        layer = _general_gemm(node, name, trans_a, trans_b, alpha, beta * c if per_column else None)
    if name == node.out:
        return layer
    product = node.add_layer(layer)
    dims = tuple(node.shape(product))
    try:
        fits = c.ndim <= 2 and np.broadcast_shapes(c.shape, dims) == dims
    except ValueError:
        fits = False
    if not fits:
        node.fail(f"C of shape {list(c.shape)} does not broadcast to the product's {list(dims)}")
    return Binary(node.out, product, "Add", constant=beta * c)


def _general_gemm(node, name, trans_a, trans_b, alpha, c):
    """Gemm of transA, a computed B or a constant A: MatMul, with constants
    transposed here and ``c`` (per column, or None) as its bias."""
    operands = []
    for index, trans in ((0, trans_a), (1, trans_b)):
        value = node.constant(index, "AB"[index]) if node.is_constant(index) else node.tensor(index)
        rank = value.ndim if isinstance(value, np.ndarray) else len(node.shape(value))
        if rank != 2:
            node.fail(f"{'AB'[index]} must be 2-D, got rank {rank}")
        operands.append(value.T if trans and isinstance(value, np.ndarray) else value)
    (a, b), constant_first = operands, node.is_constant(0)
    constant = a if constant_first else (b if node.is_constant(1) else None)
    columns = (b.shape[1] if constant is b else node.shape(b)[0 if trans_b else 1])
    bias = _bias_vector(node, c, columns) if c is not None else None
    tensors = [t for t in operands if not isinstance(t, np.ndarray)]
    return MatMul(name, tensors, constant, constant_first, trans_a and not constant_first,
                  trans_b and constant is not b, alpha, bias)


def _bias_vector(node, c, m):
    """Gemm's C as one value per output: (M,), (1, M) or a scalar."""
    if c.size == 1:
        return np.full(m, float(c.reshape(-1)[0]))
    if c.shape in ((m,), (1, m)):
        return c.reshape(-1)
    node.fail(f"C of shape {list(c.shape)} is not supported; it must be ({m},), (1, {m}) or a scalar")


def _from_matmul(node):
    """Dense for a 2-D tensor times a 2-D constant; MatMul otherwise. A
    vector operand is promoted as numpy does: A (K,) to a row (1, K), B (K,)
    to a column (K, 1), by free views, and the 1 is dropped from the result."""
    if node.is_constant(0) and node.is_constant(1):
        node.fail("both operands are constants; fold them before importing")
    a, b = (node.constant(i, ("the left operand", "the right operand")[i]) if node.is_constant(i)
            else node.tensor(i) for i in (0, 1))
    dims_a, dims_b = (v.shape if isinstance(v, np.ndarray) else tuple(node.shape(v)) for v in (a, b))
    rank_a, rank_b = len(dims_a), len(dims_b)
    if rank_a != 1 and rank_b != 1:
        return _matmul_layer(node, node.out, a, b)
    if rank_b and dims_a[-1:] != dims_b[-2 if rank_b > 1 else 0:][:1]:     # named here, not as promoted
        node.fail(f"operands of shapes {list(dims_a)} and {list(dims_b)} do not multiply")
    if rank_a == 1:     # a row at B's rank: MatMul broadcasts a computed A's leading 1s, not a 2-D A
        a = _promoted(node, a, "a", (1,) * (max(rank_b, 2) - 1) + (-1,))
    if rank_b == 1:
        b = _promoted(node, b, "b", (-1, 1))
    product = node.add_layer(_matmul_layer(node, f"{node.out}/matrix", a, b))
    dims = list(node.shape(product))
    dropped = [len(dims) - 2] * (rank_a == 1) + [len(dims) - 1] * (rank_b == 1)
    return Reshape(node.out, product, [d for i, d in enumerate(dims) if i not in dropped])


def _promoted(node, value, what, shape):
    """A vector operand as a matrix: a reshaped constant, or a view of a tensor."""
    if isinstance(value, np.ndarray):
        return value.reshape(shape)
    return node.add_layer(Reshape(f"{node.out}/{what}", value, shape))


def _matmul_layer(node, name, a, b):
    """The layer computing A @ B, of tensors (names) or constants (arrays)."""
    if isinstance(a, np.ndarray):
        return MatMul(name, b, a, constant_first=True)
    if not isinstance(b, np.ndarray):
        return MatMul(name, (a, b))
    if len(node.shape(a)) == 2 and b.ndim == 2:
        return Dense(name, a, b.T)
    return MatMul(name, a, b)


OP = OpEntry(layers=(Dense,), onnx={"Gemm": _from_gemm, "MatMul": _from_matmul}, sources=("gemv",))
