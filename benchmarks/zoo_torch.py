"""The zoo networks as torch modules that take their weights from a clnn
zoo model, so that torch (cuDNN) runs the same arithmetic as clnn.

Module and parameter names are clnn's layer names (``conv1.weight``,
``layer1.0.conv2.bias``, ``fire2.expand3x3.weight``), so that loading is a
strict ``load_state_dict`` of every layer's ``weights()``: a layer that one
side has and the other lacks fails the load, naming it. clnn folds each
BatchNorm into the convolution before it when it builds a model, so ResNet-18
is defined here in that folded form (convolutions with bias, no BatchNorm):
fewer kernels than torchvision's eager ResNet-18, never more.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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


MODULES = {"lenet5": LeNet5, "fcnn": FCNN, "alexnet": AlexNet, "vgg16": VGG16, "squeezenet": SqueezeNet,
           "resnet18": ResNet18}


def from_clnn(name, model):
    """The torch module of zoo model ``name`` holding the weights of the clnn
    model ``model`` (float32, eval mode, on the CPU)."""
    state = {f"{layer.name}.{key}": torch.from_numpy(np.array(value, dtype=np.float32))
             for layer in model.layers for key, value in layer.weights().items()}
    module = MODULES[name]()
    module.load_state_dict(state, strict=True)
    return module.eval()
