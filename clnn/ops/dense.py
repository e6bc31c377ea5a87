"""Dense (ONNX Gemm, 2-D MatMul with constant weights): a 1x1 convolution
over (N, K, 1, 1), or, at small batch where reading the weights is the whole
cost, a GEMV kernel that streams each weight row once."""

import numpy as np

from ..errors import ModelError
from .base import OUT, In, Launch, Param, activation_args, flat_launch, i32
from .conv import Conv2d

# batches up to these sizes take the GEMV kernels: a GPU reads the weights
# once for up to 16 rows; a CPU's tiled kernel already works on 16 at once
GEMV_MAX_BATCH = {"gpu": 16, "cpu": 4}
GEMV_LOCAL = 128


class Dense(Conv2d):
    op = "Gemm"

    def __init__(self, name, inputs, weight, bias=None, activation=None):
        """``weight``: (out_features, in_features), as torch.nn.Linear holds it."""
        weight = np.asarray(weight, dtype=np.float32)
        if weight.ndim != 2:
            raise ModelError(f"Gemm node {name!r}: weight must be 2-D, got shape {weight.shape}")
        super().__init__(name, inputs, weight.reshape(weight.shape + (1, 1)), bias, activation=activation)

    def describe(self):
        text = f"Dense {self.weight.shape[1]}->{self.weight.shape[0]}"
        if self.activation:
            text += " " + (self.activation if isinstance(self.activation, str) else self.activation[0])
        return text

    def out_rank(self, in_ranks):
        return 2

    def infer(self, in_shapes):
        n, k, h, w = in_shapes[0]
        if (h, w) != (1, 1):
            raise ModelError(f"Gemm node {self.name!r}: input must be 2-D (N, {self.weight.shape[1]}); "
                             f"got a 4-D tensor {in_shapes[0]} (flatten it first)")
        if k != self.weight.shape[1]:
            raise ModelError(f"Gemm node {self.name!r}: input has {k} features, weights expect "
                             f"{self.weight.shape[1]}")
        return (n, self.weight.shape[0], 1, 1)

    def assign(self, name, value):
        if name == "weight":
            value = np.asarray(value, dtype=np.float32)
            super().assign(name, value)
            self.weight = self.weight.reshape(value.shape + (1, 1))
        else:
            super().assign(name, value)

    def weights(self):
        found = {"weight": self.weight.reshape(self.weight.shape[:2])}
        if self.bias is not None:
            found["bias"] = self.bias
        return found

    def uses_gemv(self, profile):
        return self.out_shape[0] <= GEMV_MAX_BATCH[profile.kind]

    def input_box(self, out_box, index):
        return out_box.with_range("c", 0, self.in_shapes[0][1])

    def params(self, profile):
        if not self.uses_gemv(profile):
            return super().params(profile)
        bias = self.bias if self.bias is not None else np.zeros(1, np.float32)
        return {"w": self.weight.reshape(self.weight.shape[:2]), "bias": bias}

    def launches(self, profile, box):
        if not self.uses_gemv(profile):
            return super().launches(profile, box)
        bc = box.c1 - box.c0
        args = [OUT, In(0), Param("w"), Param("bias"),
                *i32(self.weight.shape[1], box.n0, box.n1 - box.n0, box.c0, bc),
                *activation_args(self.activation), np.int32(self.bias is not None)]
        if profile.kind == "gpu":
            return [Launch("gemv", "clnn_gemv_gpu", (bc * GEMV_LOCAL,), (GEMV_LOCAL,), args,
                           (f"-DLS={GEMV_LOCAL}", f"-DNB={GEMV_MAX_BATCH['gpu']}"))]
        size, local = flat_launch(profile, bc)
        return [Launch("gemv", "clnn_gemv_cpu", size, local, args)]
