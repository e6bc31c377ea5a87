"""Writes the torch_*.onnx fixtures beside this file: small models exported
by torch.onnx.export (the TorchScript exporter, "_ts", and the dynamo one,
"_dynamo"), which tests/test_onnx_spatial.py loads and checks against
onnxruntime. Run it by hand where torch (and onnxscript) are installed:

    python tests/data/make_torch_fixtures.py

The tests need only the .onnx files, not torch."""

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent


class AlexNetHead(nn.Module):
    """AlexNet's first layers, shrunk: LocalResponseNorm after each ReLU."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 8, 3, padding=1)
        self.lrn1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.lrn2 = nn.LocalResponseNorm(3, alpha=0.01, beta=0.6, k=1.5)

    def forward(self, x):
        x = F.max_pool2d(self.lrn1(F.relu(self.conv1(x))), 3, 2)
        return self.lrn2(F.relu(self.conv2(x)))


class Upsampling(nn.Module):
    """Nearest x2 and bilinear (align_corners) x1.5, as decoders use them."""

    def forward(self, x):
        return (F.interpolate(x, scale_factor=2, mode="nearest"),
                F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True),
                F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False))


class StyleDecoder(nn.Module):
    """Fast style transfer's upsampling: fractionally-strided 3x3 convolutions."""

    def __init__(self):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=4)
        self.out = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.out(F.relu(self.up2(F.relu(self.up1(x))))))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.depthwise = nn.Conv1d(4, 6, 3, padding=1), nn.Conv1d(6, 6, 5, padding=2, groups=6)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.conv(x)), 2)
        return F.adaptive_avg_pool1d(F.avg_pool1d(self.depthwise(x), 2, ceil_mode=True), 1)


class TokenMixer(nn.Module):
    """Linear layers over tokens and a product of two computed tensors."""

    def __init__(self):
        super().__init__()
        self.q, self.k = nn.Linear(4, 6, bias=False), nn.Linear(4, 6, bias=False)

    def forward(self, x):
        q, k = self.q(x), self.k(x)
        return torch.matmul(q, k.reshape(x.shape[0], 6, -1))


# name: (module, input shape, exporters, symbolic batch)
MODELS = {"lrn": (AlexNetHead, (1, 3, 15, 15), ("ts", "dynamo"), False),
          "lrn_any_batch": (AlexNetHead, (2, 3, 15, 15), ("ts", "dynamo"), True),
          "upsample": (Upsampling, (1, 3, 5, 6), ("ts", "dynamo"), False),
          "conv_transpose": (StyleDecoder, (1, 8, 4, 5), ("ts", "dynamo"), False),
          "conv1d": (Conv1dNet, (2, 4, 13), ("ts",), False),
          "matmul": (TokenMixer, (2, 5, 4), ("ts", "dynamo"), False)}


def main():
    torch.manual_seed(0)
    for name, (make, shape, exporters, any_batch) in MODELS.items():
        model, x = make().eval(), torch.randn(shape)
        for exporter in exporters:
            path = HERE / f"torch_{name}_{exporter}.onnx"
            if exporter == "dynamo":
                batch = {"dynamic_shapes": {"x": {0: torch.export.Dim("N")}}} if any_batch else {}
                torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18, input_names=["x"],
                                  external_data=False, **batch)
            else:
                batch = {"dynamic_axes": {"x": {0: "N"}}} if any_batch else {}
                torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"], **batch)
            print(path.name, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
