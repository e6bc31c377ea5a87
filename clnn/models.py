"""The model zoo: the networks of the benchmarks (README, "Models"), with
seeded random weights.

Weights are He-initialised (normal, variance 2 / fan-in) so that activations
keep their scale through deep ReLU networks; biases and BatchNorm statistics
are small random values, never zeros.
"""

import numpy as np

from .errors import ModelError
from .model import Model
from .ops.concat import Concat
from .ops.conv import Conv2d
from .ops.dense import Dense
from .ops.eltwise import Activation, Binary, ScaleShift
from .ops.lrn import LRN
from .ops.pool import Pool
from .ops.reshape import Reshape

ZOO = ("lenet5", "fcnn", "alexnet", "vgg16", "squeezenet", "resnet18")


class _Builder:
    """Collects layers with seeded weights; names follow torchvision's."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.layers = []

    def _he(self, shape, fan_in):
        return (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def _bias(self, n):
        return (self.rng.standard_normal(n) * 0.01).astype(np.float32)

    def add(self, layer):
        self.layers.append(layer)
        return layer.name

    def conv(self, name, x, cin, cout, k, stride=1, pad=0, relu=True, bias=True):
        w = self._he((cout, cin, k, k), cin * k * k)
        y = self.add(Conv2d(name, x, w, self._bias(cout) if bias else None, stride=stride, pads=pad))
        return self.relu(y) if relu else y

    def bn(self, name, x, c, relu=False):
        gamma = self.rng.uniform(0.8, 1.2, c)
        beta = self.rng.standard_normal(c) * 0.05
        mean = self.rng.standard_normal(c) * 0.05
        var = self.rng.uniform(0.8, 1.2, c)
        scale = gamma / np.sqrt(var + 1e-5)
        y = self.add(ScaleShift(name, x, scale, beta - mean * scale))
        return self.relu(y) if relu else y

    def relu(self, x):
        return self.add(Activation(f"{x}.relu", x, "relu"))

    def linear(self, name, x, fin, fout, relu=True):
        y = self.add(Dense(name, x, self._he((fout, fin), fin), self._bias(fout)))
        return self.relu(y) if relu else y

    def pool(self, name, x, kind, k=None, stride=None, pad=0, ceil=False):
        return self.add(Pool(name, x, kind, kernel=k, stride=stride, pads=pad, ceil_mode=ceil))

    def flatten(self, name, x):
        return self.add(Reshape(name, x))

    def model(self, name, inputs, output):
        return Model(inputs, self.layers, [output], name=name)


def lenet5(batch=1, seed=0):
    b = _Builder(seed)
    x = b.conv("conv1", "input", 1, 6, 5, pad=2)
    x = b.pool("pool1", x, "max", 2, 2)
    x = b.conv("conv2", x, 6, 16, 5)
    x = b.pool("pool2", x, "max", 2, 2)
    x = b.flatten("flatten", x)
    x = b.linear("fc1", x, 400, 120)
    x = b.linear("fc2", x, 120, 84)
    x = b.linear("fc3", x, 84, 10, relu=False)
    return b.model("lenet5", {"input": (batch, 1, 28, 28)}, x)


def fcnn(batch=1, seed=0):
    b = _Builder(seed)
    x = b.linear("fc1", "input", 784, 512)
    x = b.linear("fc2", x, 512, 512)
    x = b.linear("fc3", x, 512, 10, relu=False)
    return b.model("fcnn", {"input": (batch, 784)}, x)


def alexnet(batch=1, seed=0):
    b = _Builder(seed)
    x = b.conv("conv1", "input", 3, 96, 11, stride=4)
    x = b.add(LRN("lrn1", x, 5, 1e-4, 0.75, 1.0))
    x = b.pool("pool1", x, "max", 3, 2)
    x = b.conv("conv2", x, 96, 256, 5, pad=2)
    x = b.add(LRN("lrn2", x, 5, 1e-4, 0.75, 1.0))
    x = b.pool("pool2", x, "max", 3, 2)
    x = b.conv("conv3", x, 256, 384, 3, pad=1)
    x = b.conv("conv4", x, 384, 384, 3, pad=1)
    x = b.conv("conv5", x, 384, 256, 3, pad=1)
    x = b.pool("pool5", x, "max", 3, 2)
    return b.model("alexnet", {"input": (batch, 3, 227, 227)}, _classifier(b, x, 9216))


def _classifier(b, x, features):
    """AlexNet's and VGG's head: flatten, then 4096, 4096 and 1000 features."""
    x = b.flatten("flatten", x)
    x = b.linear("fc6", x, features, 4096)
    x = b.linear("fc7", x, 4096, 4096)
    return b.linear("fc8", x, 4096, 1000, relu=False)


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(batch=1, seed=0):
    b = _Builder(seed)
    x, cin, conv, block = "input", 3, 1, 1
    for item in VGG16:
        if item == "M":
            x = b.pool(f"pool{block}", x, "max", 2, 2)
            block, conv = block + 1, 1
        else:
            x = b.conv(f"conv{block}_{conv}", x, cin, item, 3, pad=1)
            cin, conv = item, conv + 1
    return b.model("vgg16", {"input": (batch, 3, 224, 224)}, _classifier(b, x, 25088))


def _fire(b, name, x, cin, squeeze, expand):
    s = b.conv(f"{name}.squeeze", x, cin, squeeze, 1)
    e1 = b.conv(f"{name}.expand1x1", s, squeeze, expand, 1)
    e3 = b.conv(f"{name}.expand3x3", s, squeeze, expand, 3, pad=1)
    return b.add(Concat(f"{name}.concat", [e1, e3]))


def squeezenet(batch=1, seed=0):
    b = _Builder(seed)
    x = b.conv("conv1", "input", 3, 96, 7, stride=2)
    x = b.pool("pool1", x, "max", 3, 2, ceil=True)
    fires = [(96, 16, 64), (128, 16, 64), (128, 32, 128), "M", (256, 32, 128), (256, 48, 192),
             (384, 48, 192), (384, 64, 256), "M", (512, 64, 256)]
    index, pool = 2, 2
    for item in fires:
        if item == "M":
            x = b.pool(f"pool{pool}", x, "max", 3, 2, ceil=True)
            pool += 1
            continue
        x = _fire(b, f"fire{index}", x, *item)
        index += 1
    x = b.conv("conv10", x, 512, 1000, 1)
    x = b.pool("avgpool", x, "avg")
    x = b.flatten("flatten", x)
    return b.model("squeezenet", {"input": (batch, 3, 224, 224)}, x)


def _basic_block(b, name, x, cin, cout, stride):
    y = b.conv(f"{name}.conv1", x, cin, cout, 3, stride=stride, pad=1, relu=False, bias=False)
    y = b.bn(f"{name}.bn1", y, cout, relu=True)
    y = b.conv(f"{name}.conv2", y, cout, cout, 3, pad=1, relu=False, bias=False)
    y = b.bn(f"{name}.bn2", y, cout)
    if stride != 1 or cin != cout:
        x = b.conv(f"{name}.downsample.0", x, cin, cout, 1, stride=stride, relu=False, bias=False)
        x = b.bn(f"{name}.downsample.1", x, cout)
    out = b.add(Binary(f"{name}.add", (y, x), "Add"))
    return b.relu(out)


def resnet18(batch=1, seed=0):
    b = _Builder(seed)
    x = b.conv("conv1", "input", 3, 64, 7, stride=2, pad=3, relu=False, bias=False)
    x = b.bn("bn1", x, 64, relu=True)
    x = b.pool("maxpool", x, "max", 3, 2, pad=1)
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(b, f"layer{stage}.{block}", x, cin, cout, stride)
            cin = cout
    x = b.pool("avgpool", x, "avg")
    x = b.flatten("flatten", x)
    x = b.linear("fc", x, 512, 1000, relu=False)
    return b.model("resnet18", {"input": (batch, 3, 224, 224)}, x)


def get(name, batch=1, seed=0):
    """A zoo model by name."""
    if name not in ZOO:
        raise ModelError(f"no zoo model {name!r}; the zoo has {', '.join(ZOO)}")
    return globals()[name](batch=batch, seed=seed)
