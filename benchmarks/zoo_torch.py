"""The zoo networks as torch modules that take their weights from a clnn
zoo model, so that torch (cuDNN) runs the same arithmetic as clnn.

Module and parameter names are clnn's layer names (``conv1.weight``,
``layer1.0.conv2.bias``, ``fire2.expand3x3.weight``), so that loading is a
strict ``load_state_dict`` of every layer's ``weights()``: a layer that one
side has and the other lacks fails the load, naming it. clnn folds each
BatchNorm into the convolution before it when it builds a model, so ResNet-18
is defined here in that folded form (convolutions with bias, no BatchNorm):
fewer kernels than torchvision's eager ResNet-18, never more. The same goes
for every network after it; those are built by ``Named``, with clnn's dotted
layer names, and share the zoo's layer tables (clnn.models).
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # clnn of this checkout
from clnn import models  # noqa: E402


def conv(cin, cout, k, stride=1, pad=0):
    return nn.Conv2d(cin, cout, k, stride, pad)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = conv(1, 6, 5, pad=2), conv(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class FCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 512), nn.Linear(512, 512), nn.Linear(512, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Classifier(nn.Module):
    """AlexNet's and VGG's head: fc6, fc7, fc8 (ReLU between)."""

    def __init__(self, features):
        super().__init__()
        self.fc6, self.fc7, self.fc8 = nn.Linear(features, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000)

    def head(self, x):
        return self.fc8(F.relu(self.fc7(F.relu(self.fc6(x.flatten(1))))))


class AlexNet(Classifier):
    def __init__(self):
        super().__init__(9216)
        self.conv1, self.conv2 = conv(3, 96, 11, 4), conv(96, 256, 5, pad=2)
        self.conv3, self.conv4 = conv(256, 384, 3, pad=1), conv(384, 384, 3, pad=1)
        self.conv5 = conv(384, 256, 3, pad=1)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    def forward(self, x):
        x = F.max_pool2d(self.lrn(F.relu(self.conv1(x))), 3, 2)
        x = F.max_pool2d(self.lrn(F.relu(self.conv2(x))), 3, 2)
        x = F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(x))))))
        return self.head(F.max_pool2d(x, 3, 2))


VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16(Classifier):
    def __init__(self):
        super().__init__(25088)
        cin = 3
        for block, widths in enumerate(VGG16_BLOCKS, start=1):
            for index, cout in enumerate(widths, start=1):
                setattr(self, f"conv{block}_{index}", conv(cin, cout, 3, pad=1))
                cin = cout

    def forward(self, x):
        for block, widths in enumerate(VGG16_BLOCKS, start=1):
            for index in range(1, len(widths) + 1):
                x = F.relu(getattr(self, f"conv{block}_{index}")(x))
            x = F.max_pool2d(x, 2)
        return self.head(x)


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = conv(cin, squeeze, 1)
        self.expand1x1, self.expand3x3 = conv(squeeze, expand, 1), conv(squeeze, expand, 3, pad=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


# SqueezeNet 1.0 from fire2 on; "M" is a ceil-mode 3x3/2 max pool
SQUEEZENET_FIRES = ((96, 16, 64), (128, 16, 64), (128, 32, 128), "M", (256, 32, 128), (256, 48, 192),
                    (384, 48, 192), (384, 64, 256), "M", (512, 64, 256))


class SqueezeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv10 = conv(3, 96, 7, 2), conv(512, 1000, 1)
        index = 2
        for item in SQUEEZENET_FIRES:
            if item != "M":
                setattr(self, f"fire{index}", Fire(*item))
                index += 1

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, ceil_mode=True)
        index = 2
        for item in SQUEEZENET_FIRES:
            if item == "M":
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
            else:
                x = getattr(self, f"fire{index}")(x)
                index += 1
        return F.adaptive_avg_pool2d(F.relu(self.conv10(x)), 1).flatten(1)


class BasicBlock(nn.Module):
    """ResNet's basic block with BatchNorm folded into each convolution."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.conv2 = conv(cin, cout, 3, stride, 1), conv(cout, cout, 3, 1, 1)
        self.downsample = nn.Sequential(conv(cin, cout, 1, stride)) if stride != 1 or cin != cout else None

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(F.relu(self.conv1(x))) + shortcut)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.fc = conv(3, 64, 7, 2, 3), nn.Linear(512, 1000)
        cin = 64
        for stage, cout in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if stage == 1 else 2
            setattr(self, f"layer{stage}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, 2, 1)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Named(nn.Module):
    """Submodules registered under clnn's dotted layer names (nested as torch
    nests them, so that the state dict's keys are those names) and looked up
    by those names in ``forward``."""

    def __init__(self):
        super().__init__()
        self.named = {}

    def put(self, name, module):
        parent = self
        *path, leaf = name.split(".")
        for part in path:
            if part not in parent._modules:
                parent.add_module(part, nn.Module())
            parent = parent._modules[part]
        parent.add_module(leaf, module)
        self.named[name] = module
        return module

    def conv(self, name, cin, cout, k, stride=1, pad=0, groups=1):
        return self.put(name, nn.Conv2d(cin, cout, k, stride, pad, groups=groups))

    def __getitem__(self, name):
        return self.named[name]


def relu6(x):
    return torch.clamp(x, 0.0, 6.0)


def leaky(x):
    return F.leaky_relu(x, 0.1)


class ResNet50Body:
    """ResNet-50 v1.5's convolutions (BatchNorm folded) under ``prefix``,
    for a Named module; ``stages`` gives the four stage outputs."""

    def build_body(self, prefix):
        self.prefix = prefix
        self.conv(f"{prefix}conv1", 3, 64, 7, 2, 3)
        cin = 64
        for stage, (width, blocks) in enumerate(models.RESNET50, start=1):
            for block in range(blocks):
                name, stride = f"{prefix}layer{stage}.{block}", 2 if stage > 1 and block == 0 else 1
                self.conv(f"{name}.conv1", cin, width, 1)
                self.conv(f"{name}.conv2", width, width, 3, stride, 1)
                self.conv(f"{name}.conv3", width, 4 * width, 1)
                if stride != 1 or cin != 4 * width:
                    self.conv(f"{name}.downsample.0", cin, 4 * width, 1, stride)
                cin = 4 * width

    def stages(self, x):
        p = self.prefix
        x = F.max_pool2d(F.relu(self[f"{p}conv1"](x)), 3, 2, 1)
        found = []
        for stage, (_, blocks) in enumerate(models.RESNET50, start=1):
            for block in range(blocks):
                name = f"{p}layer{stage}.{block}"
                y = F.relu(self[f"{name}.conv2"](F.relu(self[f"{name}.conv1"](x))))
                shortcut = self.named.get(f"{name}.downsample.0", nn.Identity())(x)
                x = F.relu(self[f"{name}.conv3"](y) + shortcut)
            found.append(x)
        return found


class ResNet50(Named, ResNet50Body):
    def __init__(self):
        super().__init__()
        self.build_body("")
        self.put("fc", nn.Linear(2048, 1000))

    def forward(self, x):
        return self["fc"](F.adaptive_avg_pool2d(self.stages(x)[-1], 1).flatten(1))


class MobileNetV2(Named):
    def __init__(self):
        super().__init__()
        self.conv("features.0.0", 3, 32, 3, 2, 1)
        self.blocks, cin, index = [], 32, 1
        for expansion, cout, blocks, stride in models.MOBILENET_V2:
            for block in range(blocks):
                name, hidden, part = f"features.{index}", cin * expansion, int(expansion != 1)
                if expansion != 1:
                    self.conv(f"{name}.conv.0.0", cin, hidden, 1)
                self.conv(f"{name}.conv.{part}.0", hidden, hidden, 3, stride if block == 0 else 1, 1, groups=hidden)
                self.conv(f"{name}.conv.{part + 1}", hidden, cout, 1)
                self.blocks.append((name, part, block > 0 and cin == cout))
                cin, index = cout, index + 1
        self.last = f"features.{index}.0"
        self.conv(self.last, cin, 1280, 1)
        self.put("classifier.1", nn.Linear(1280, 1000))

    def forward(self, x):
        x = relu6(self["features.0.0"](x))
        for name, part, residual in self.blocks:
            y = relu6(self[f"{name}.conv.0.0"](x)) if part else x
            y = self[f"{name}.conv.{part + 1}"](relu6(self[f"{name}.conv.{part}.0"](y)))
            x = x + y if residual else y
        x = relu6(self[self.last](x))
        return self["classifier.1"](F.adaptive_avg_pool2d(x, 1).flatten(1))


def space_to_depth(x, b):
    """ONNX's SpaceToDepth (DCR: channel (row, column, input channel) of the
    block); torch's pixel_unshuffle orders the channels the other way."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, c * b * b, h // b, w // b)


class YOLOv2(Named):
    def __init__(self):
        super().__init__()
        cin, index = 3, 1
        for item in models.DARKNET19:
            if item != "M":
                self.conv(f"conv{index}", cin, item[0], item[1], 1, item[1] // 2)
                cin, index = item[0], index + 1
        self.conv("conv19", 1024, 1024, 3, 1, 1)
        self.conv("conv20", 1024, 1024, 3, 1, 1)
        self.conv("conv21", 512, 64, 1)
        self.conv("conv22", 1280, 1024, 3, 1, 1)
        self.conv("conv23", 1024, 125, 1)

    def forward(self, x):
        index = 1
        for item in models.DARKNET19:
            if item == "M":
                passthrough, x = x, F.max_pool2d(x, 2)
            else:
                x, index = leaky(self[f"conv{index}"](x)), index + 1
        x = leaky(self["conv20"](leaky(self["conv19"](x))))
        p = space_to_depth(leaky(self["conv21"](passthrough)), 2)
        return self["conv23"](leaky(self["conv22"](torch.cat([p, x], 1))))


def vgg_convs(module, config, cin):
    """Named VGG-style 3x3 convolutions as clnn.models names them: [(name or
    "M")] to run in order."""
    steps, block, conv = [], 1, 1
    for item in config:
        if item == "M":
            steps.append("M")
            block, conv = block + 1, 1
        else:
            steps.append(f"conv{block}_{conv}")
            module.conv(steps[-1], cin, item, 3, 1, 1)
            cin, conv = item, conv + 1
    return steps, cin


class PoseNet(Named):
    def __init__(self):
        super().__init__()
        self.front, cin = vgg_convs(self, models.POSENET_FRONT, 3)
        maps = models.POSENET_MAPS
        self.conv("stage1.conv1", cin, 512, 1)
        self.conv("stage1.conv2", 512, maps, 1)
        for stage in (2, 3):
            for index in range(1, 6):
                self.conv(f"stage{stage}.conv{index}", cin + maps if index == 1 else 128, 128, 7, 1, 3)
            self.conv(f"stage{stage}.conv6", 128, 128, 1)
            self.conv(f"stage{stage}.conv7", 128, maps, 1)

    def forward(self, x):
        for step in self.front:
            x = F.max_pool2d(x, 2) if step == "M" else F.relu(self[step](x))
        maps = self["stage1.conv2"](F.relu(self["stage1.conv1"](x)))
        for stage in (2, 3):
            y = torch.cat([x, maps], 1)
            for index in range(1, 7):
                y = F.relu(self[f"stage{stage}.conv{index}"](y))
            maps = self[f"stage{stage}.conv7"](y)
        return maps


class InstanceNorm(nn.Module):
    """Instance norm with clnn's parameter names (scale, bias)."""

    def __init__(self, channels):
        super().__init__()
        self.scale, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.instance_norm(x, weight=self.scale, bias=self.bias, eps=1e-5)


class FST(Named):
    """Reflection-padded convolutions, instance norm, ConvTranspose upsampling."""

    def __init__(self):
        super().__init__()
        self.layers = [("conv1", 3, 32, 9, 1), ("conv2", 32, 64, 3, 2), ("conv3", 64, 128, 3, 2)]
        self.layers += [(f"res{b}.conv{i}", 128, 128, 3, 1) for b in range(1, 6) for i in (1, 2)]
        for name, cin, cout, k, stride in self.layers + [("deconv3", 32, 3, 9, 1)]:
            self.conv(f"{name}.conv2d", cin, cout, k, stride)
            if name != "deconv3":
                self.put(f"{name}.norm", InstanceNorm(cout))
        for name, cin, cout in (("deconv1", 128, 64), ("deconv2", 64, 32)):
            self.put(f"{name}.conv2d", nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1))
            self.put(f"{name}.norm", InstanceNorm(cout))

    def padded_conv(self, name, x):
        conv = self[f"{name}.conv2d"]
        p = conv.kernel_size[0] // 2
        return conv(F.pad(x, (p, p, p, p), mode="reflect"))

    def forward(self, x):
        for name in ("conv1", "conv2", "conv3"):
            x = F.relu(self[f"{name}.norm"](self.padded_conv(name, x)))
        for block in range(1, 6):
            y = F.relu(self[f"res{block}.conv1.norm"](self.padded_conv(f"res{block}.conv1", x)))
            x = self[f"res{block}.conv2.norm"](self.padded_conv(f"res{block}.conv2", y)) + x
        for name in ("deconv1", "deconv2"):
            x = F.relu(self[f"{name}.norm"](self[f"{name}.conv2d"](x)))
        return self.padded_conv("deconv3", x)


class RetinaFace(Named, ResNet50Body):
    def __init__(self):
        super().__init__()
        self.build_body("body.")
        for i in (1, 2, 3):
            self.conv(f"fpn.output{i}.0", 256 * 2 ** i, 256, 1)
            ssh = f"ssh{i}"
            self.conv(f"{ssh}.conv3X3.0", 256, 128, 3, 1, 1)
            self.conv(f"{ssh}.conv5X5_1.0", 256, 64, 3, 1, 1)
            for part in ("conv5X5_2", "conv7X7_2", "conv7x7_3"):
                self.conv(f"{ssh}.{part}.0", 64, 64, 3, 1, 1)
            for head, values in models.RETINA_HEADS:
                self.conv(f"{head}.{i - 1}.conv1x1", 256, models.RETINA_ANCHORS * values, 1)
        for i in (1, 2):
            self.conv(f"fpn.merge{i}.0", 256, 256, 3, 1, 1)

    def ssh(self, name, x):
        c5 = F.relu(self[f"{name}.conv5X5_1.0"](x))
        c7 = self[f"{name}.conv7x7_3.0"](F.relu(self[f"{name}.conv7X7_2.0"](c5)))
        return F.relu(torch.cat([self[f"{name}.conv3X3.0"](x), self[f"{name}.conv5X5_2.0"](c5), c7], 1))

    def forward(self, x):
        levels = [F.relu(self[f"fpn.output{i}.0"](c)) for i, c in enumerate(self.stages(x)[1:], start=1)]
        for i in (2, 1):
            up = F.interpolate(levels[i], scale_factor=2, mode="nearest")
            levels[i - 1] = F.relu(self[f"fpn.merge{i}.0"](levels[i - 1] + up))
        contexts = [self.ssh(f"ssh{i + 1}", level) for i, level in enumerate(levels)]
        parts = []
        for head, values in models.RETINA_HEADS:
            rows = [self[f"{head}.{i}.conv1x1"](c).permute(0, 2, 3, 1).reshape(x.shape[0], -1, values)
                    for i, c in enumerate(contexts)]
            parts.append(torch.cat(rows, 1))
        parts[1] = torch.softmax(parts[1], dim=2)
        return torch.cat(parts, 2)


MODULES = {"lenet5": LeNet5, "fcnn": FCNN, "alexnet": AlexNet, "vgg16": VGG16, "squeezenet": SqueezeNet,
           "resnet18": ResNet18, "resnet50": ResNet50, "mobilenet_v2": MobileNetV2, "yolov2": YOLOv2,
           "posenet": PoseNet, "fst": FST, "retinaface": RetinaFace}


def from_clnn(name, model):
    """The torch module of zoo model ``name`` holding the weights of the clnn
    model ``model`` (float32, eval mode, on the CPU)."""
    state = {f"{layer.name}.{key}": torch.from_numpy(np.array(value, dtype=np.float32))
             for layer in model.layers for key, value in layer.weights().items()}
    module = MODULES[name]()
    module.load_state_dict(state, strict=True)
    return module.eval()
