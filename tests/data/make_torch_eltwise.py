"""Writes the torch_eltwise_*.onnx fixtures beside this file: small
convolutional models with the activations and elementwise ops of
torchvision's and timm's networks, exported by torch.onnx.export (the
TorchScript exporter, "_ts<opset>", and the dynamo one, "_dynamo<opset>"),
which tests/test_onnx_eltwise.py loads and checks against onnxruntime. Run
it by hand where torch (and onnxscript) are installed:

    python tests/data/make_torch_eltwise.py

The tests need only the .onnx files, not torch."""

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def activations(softplus=True):
    # the dynamo exporter writes Softplus as Where(x > 20, x, Softplus(x)): comparisons are no clnn layers
    return [nn.SiLU(), nn.Hardswish(), nn.GELU(), nn.GELU(approximate="tanh"), nn.Mish(), nn.PReLU(6),
            nn.ELU(0.5), nn.SELU(), nn.CELU(0.8), *([nn.Softplus()] if softplus else []), nn.LeakyReLU(0.1),
            nn.ReLU6(), nn.Hardsigmoid(), nn.Sigmoid(), nn.Tanh(), nn.Softsign()]


class Activations(nn.Module):
    """Each activation after a 3x3 convolution; a MobileNetV3 squeeze and
    excitation (x * hardsigmoid(fc(pool(x))), a broadcast Mul); and a few
    elementwise ops of timm's code (pow, maximum, clamp, x * 0.5)."""

    def __init__(self, acts):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(6, 6, 3, padding=1) for _ in acts)
        self.acts = nn.ModuleList(acts)
        self.pool = nn.AvgPool2d((7, 5))   # not AdaptiveAvgPool2d, which the dynamo exporter writes as ReduceMean
        self.squeeze = nn.Conv2d(6, 6, 1)
        self.side = nn.Conv2d(6, 6, 1)

    def forward(self, x):
        for conv, act in zip(self.convs, self.acts):
            x = act(conv(x))
        gate = nn.functional.hardsigmoid(self.squeeze(self.pool(x)))
        x = x * gate
        side = self.side(x)
        return torch.maximum(x, side).clamp(min=-0.5) + torch.pow(side, 2) * 0.5 - x.abs().sqrt()


def main():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 7, 5)
    model = Activations(activations()).eval()
    for opset in (12, 14, 17):
        torch.onnx.export(model, (x,), HERE / f"torch_eltwise_ts{opset}.onnx", opset_version=opset, dynamo=False,
                          input_names=["x"], output_names=["y"])
    model = Activations(activations(softplus=False)).eval()
    for opset in (18, 20):
        torch.onnx.export(model, (x,), HERE / f"torch_eltwise_dynamo{opset}.onnx", opset_version=opset, dynamo=True,
                          input_names=["x"], output_names=["y"], external_data=False)


if __name__ == "__main__":
    main()
