"""The model zoo: the networks of the benchmarks (README, "Models"), with
seeded random weights.

Weights are He-initialised (normal, variance 2 / fan-in) so that activations
keep their scale through deep ReLU networks; biases and BatchNorm statistics
are small random values, never zeros.

| name | input | layers | parameters | GFLOP |
|---|---|---|---|---|
| lenet5 | 1x28x28 | 2 conv, 3 linear | 0.06 M | 0.0008 |
| fcnn | 784 | 3 linear | 0.67 M | 0.0013 |
| alexnet | 3x227x227 | 5 conv, LRN, 3 linear | 62.4 M | 2.28 |
| vgg16 | 3x224x224 | 13 conv, 3 linear | 138.4 M | 30.9 |
| squeezenet | 3x224x224 | SqueezeNet 1.0, 26 conv | 1.25 M | 1.64 |
| resnet18 | 3x224x224 | 20 conv + BN, linear | 11.7 M | 3.63 |
| resnet50 | 3x224x224 | torchvision ResNet-50 v1.5: 53 conv + BN, linear | 25.5 M | 8.18 |
| mobilenet_v2 | 3x224x224 | torchvision MobileNetV2: 52 conv (17 depthwise) + BN, ReLU6, linear | 3.49 M | 0.60 |
| yolov2 | 3x416x416 | YOLOv2 VOC: 23 conv (BN folded), LeakyRelu, SpaceToDepth; 125x13x13 | 50.6 M | 29.4 |
| posenet | 3x256x256 | pose machine: 15 + 2 + 2x7 conv (7x7 ones); 21x32x32 | 17.5 M | 60.3 |
| fst | 3x480x640 | fast style transfer: 14 conv, 2 ConvTranspose, InstanceNorm, reflect Pad | 1.68 M | 78.0 |
| retinaface | 3x640x640 | ResNet-50, 3-level FPN, SSH, heads: 82 conv + BN, Resize; 16800x16 | 27.3 M | 88.6 |

Parameters count BatchNorm folded into its convolution (as the model holds
them); GFLOP counts a multiply-add as two, at batch 1. The networks from
resnet50 on take ``size=`` (the input's H and W, or one side; SIZES holds
what they divide by), so that tests can run them on smaller maps.

Choices where the sources differ: fst pads with reflection before each
convolution (as pytorch/examples' TransformerNet does), upsamples with
ConvTranspose (stride 2, pad 1, output padding 1: the paper's
fractionally-strided convolutions) and has no output activation; retinaface
follows biubug6's Pytorch_Retinaface (three pyramid levels, strides 8, 16,
32, ReLU where it writes LeakyReLU with slope 0) rather than CoDL's artifact,
whose five levels from 160x160 to 10x10 come as a shape list without the
layers that would feed them (its heads are 3x3 convolutions to 12 and 6
channels); its one output holds per anchor the box (4), the softmax of the
face/background scores (2) and five landmarks (10). yolov2's reorg is ONNX's
SpaceToDepth (DCR), not Darknet's own channel order.
"""

import numpy as np

from .errors import ModelError
from .model import Model
from .ops.concat import Concat
from .ops.conv import Conv2d
from .ops.conv_transpose import ConvTranspose2d
from .ops.dense import Dense
from .ops.eltwise import Activation, Binary, ScaleShift
from .ops.lrn import LRN
from .ops.norm import InstanceNorm
from .ops.pad import Pad
from .ops.pool import Pool
from .ops.reshape import Reshape
from .ops.resize import Resize
from .ops.softmax import Softmax
from .ops.transpose import SpaceToDepth, Transpose

ZOO = ("lenet5", "fcnn", "alexnet", "vgg16", "squeezenet", "resnet18", "resnet50", "mobilenet_v2", "yolov2",
       "posenet", "fst", "retinaface")
# the networks that take ``size=``: their default input (H, W) and what H and W must divide by
SIZES = {"resnet50": ((224, 224), 32), "mobilenet_v2": ((224, 224), 32), "yolov2": ((416, 416), 32),
         "posenet": ((256, 256), 8), "fst": ((480, 640), 4), "retinaface": ((640, 640), 32)}
RELU6 = ("clip", 0.0, 6.0)
LEAKY = ("leaky_relu", 0.1)
ACT_SUFFIX = {RELU6: "relu6", LEAKY: "leaky"}


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

    def conv(self, name, x, cin, cout, k, stride=1, pad=0, act="relu", bias=True, groups=1):
        w = self._he((cout, cin // groups, k, k), cin // groups * k * k)
        y = self.add(Conv2d(name, x, w, self._bias(cout) if bias else None, stride=stride, pads=pad, groups=groups))
        return self.act(y, act)

    def bn(self, name, x, c, act=None):
        gamma = self.rng.uniform(0.8, 1.2, c)
        beta = self.rng.standard_normal(c) * 0.05
        mean = self.rng.standard_normal(c) * 0.05
        var = self.rng.uniform(0.8, 1.2, c)
        scale = gamma / np.sqrt(var + 1e-5)
        y = self.add(ScaleShift(name, x, scale, beta - mean * scale))
        return self.act(y, act)

    def conv_bn(self, conv_name, bn_name, x, cin, cout, k, stride=1, pad=0, act=None, groups=1):
        """A convolution without bias, then BatchNorm (folded when the model
        is built), then ``act``."""
        y = self.conv(conv_name, x, cin, cout, k, stride=stride, pad=pad, act=None, bias=False, groups=groups)
        return self.bn(bn_name, y, cout, act=act)

    def instance_norm(self, name, x, c, act=None):
        y = self.add(InstanceNorm(name, x, self.rng.uniform(0.8, 1.2, c).astype(np.float32), self._bias(c)))
        return self.act(y, act)

    def act(self, x, activation):
        """``x`` through ``activation`` (None: ``x`` itself), a layer named
        after ``x``: ``conv1.relu``, ``features.0.0.relu6``."""
        if activation is None:
            return x
        return self.add(Activation(f"{x}.{ACT_SUFFIX.get(activation, activation)}", x, activation))

    def linear(self, name, x, fin, fout, relu=True):
        y = self.add(Dense(name, x, self._he((fout, fin), fin), self._bias(fout)))
        return self.act(y, "relu" if relu else None)

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


def _vgg_convs(b, x, cin, config):
    """VGG-style 3x3 pad-1 convolutions with ReLU, named conv{block}_{index}
    ("M": a 2x2 max pool ending the block); the output and its channels."""
    conv, block = 1, 1
    for item in config:
        if item == "M":
            x = b.pool(f"pool{block}", x, "max", 2, 2)
            block, conv = block + 1, 1
        else:
            x = b.conv(f"conv{block}_{conv}", x, cin, item, 3, pad=1)
            cin, conv = item, conv + 1
    return x, cin


def vgg16(batch=1, seed=0):
    b = _Builder(seed)
    x, _ = _vgg_convs(b, "input", 3, VGG16)
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
    y = b.conv(f"{name}.conv1", x, cin, cout, 3, stride=stride, pad=1, act=None, bias=False)
    y = b.bn(f"{name}.bn1", y, cout, act="relu")
    y = b.conv(f"{name}.conv2", y, cout, cout, 3, pad=1, act=None, bias=False)
    y = b.bn(f"{name}.bn2", y, cout)
    return _shortcut_add(b, name, x, y, cin, cout, stride)


def _shortcut_add(b, name, x, y, cin, cout, stride):
    """ResNet's block output relu(y + x), x through a 1x1 convolution and
    BatchNorm where the block changes its shape."""
    if stride != 1 or cin != cout:
        x = b.conv_bn(f"{name}.downsample.0", f"{name}.downsample.1", x, cin, cout, 1, stride=stride)
    out = b.add(Binary(f"{name}.add", (y, x), "Add"))
    return b.act(out, "relu")


def resnet18(batch=1, seed=0):
    b = _Builder(seed)
    x = b.conv("conv1", "input", 3, 64, 7, stride=2, pad=3, act=None, bias=False)
    x = b.bn("bn1", x, 64, act="relu")
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


# ResNet-50 v1.5 (torchvision): (bottleneck width, blocks) per stage; the
# stride of a stage's first block sits on its 3x3 convolution
RESNET50 = ((64, 3), (128, 4), (256, 6), (512, 3))


def _bottleneck(b, name, x, cin, width, stride):
    cout = 4 * width
    y = b.conv_bn(f"{name}.conv1", f"{name}.bn1", x, cin, width, 1, act="relu")
    y = b.conv_bn(f"{name}.conv2", f"{name}.bn2", y, width, width, 3, stride=stride, pad=1, act="relu")
    y = b.conv_bn(f"{name}.conv3", f"{name}.bn3", y, width, cout, 1)
    return _shortcut_add(b, name, x, y, cin, cout, stride)


def _resnet50_stages(b, prefix=""):
    """ResNet-50 from the input to layer4; the outputs of its four stages
    (strides 4, 8, 16 and 32; 256, 512, 1024 and 2048 channels)."""
    x = b.conv_bn(f"{prefix}conv1", f"{prefix}bn1", "input", 3, 64, 7, stride=2, pad=3, act="relu")
    x = b.pool(f"{prefix}maxpool", x, "max", 3, 2, pad=1)
    cin, stages = 64, []
    for stage, (width, blocks) in enumerate(RESNET50, start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            x = _bottleneck(b, f"{prefix}layer{stage}.{block}", x, cin, width, stride)
            cin = 4 * width
        stages.append(x)
    return stages


def resnet50(batch=1, seed=0, size=None):
    b = _Builder(seed)
    x = _resnet50_stages(b)[-1]
    x = b.pool("avgpool", x, "avg")
    x = b.flatten("flatten", x)
    x = b.linear("fc", x, 2048, 1000, relu=False)
    return b.model("resnet50", {"input": (batch, 3, *_size("resnet50", size))}, x)


# MobileNetV2 (torchvision): (expansion, output channels, blocks, first stride)
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


def _inverted_residual(b, name, x, cin, cout, stride, expansion):
    """1x1 expansion (none at expansion 1), 3x3 depthwise, linear 1x1
    projection; the input added back where the shape stays."""
    hidden, y, part = cin * expansion, x, 0
    if expansion != 1:
        y = b.conv_bn(f"{name}.conv.0.0", f"{name}.conv.0.1", y, cin, hidden, 1, act=RELU6)
        part = 1
    y = b.conv_bn(f"{name}.conv.{part}.0", f"{name}.conv.{part}.1", y, hidden, hidden, 3, stride=stride, pad=1,
                  act=RELU6, groups=hidden)
    y = b.conv_bn(f"{name}.conv.{part + 1}", f"{name}.conv.{part + 2}", y, hidden, cout, 1)
    if stride == 1 and cin == cout:
        y = b.add(Binary(f"{name}.add", (x, y), "Add"))
    return y


def mobilenet_v2(batch=1, seed=0, size=None):
    b = _Builder(seed)
    x = b.conv_bn("features.0.0", "features.0.1", "input", 3, 32, 3, stride=2, pad=1, act=RELU6)
    cin, index = 32, 1
    for expansion, cout, blocks, stride in MOBILENET_V2:
        for block in range(blocks):
            x = _inverted_residual(b, f"features.{index}", x, cin, cout, stride if block == 0 else 1, expansion)
            cin, index = cout, index + 1
    x = b.conv_bn(f"features.{index}.0", f"features.{index}.1", x, cin, 1280, 1, act=RELU6)
    x = b.pool("avgpool", x, "avg")
    x = b.flatten("flatten", x)
    x = b.linear("classifier.1", x, 1280, 1000, relu=False)
    return b.model("mobilenet_v2", {"input": (batch, 3, *_size("mobilenet_v2", size))}, x)


# Darknet-19's convolutions as YOLOv2 uses them: (channels, kernel), "M" a 2x2 max pool
DARKNET19 = ((32, 3), "M", (64, 3), "M", (128, 3), (64, 1), (128, 3), "M", (256, 3), (128, 1), (256, 3), "M",
             (512, 3), (256, 1), (512, 3), (256, 1), (512, 3), "M", (1024, 3), (512, 1), (1024, 3), (512, 1),
             (1024, 3))


def yolov2(batch=1, seed=0, size=None):
    """YOLOv2 on VOC with BatchNorm folded into biased convolutions."""
    b = _Builder(seed)
    x, cin, conv, pool = "input", 3, 1, 1
    for item in DARKNET19:
        if item == "M":
            passthrough = x     # the map before the last pool (26x26x512 at 416x416)
            x = b.pool(f"pool{pool}", x, "max", 2, 2)
            pool += 1
            continue
        cout, k = item
        x = b.conv(f"conv{conv}", x, cin, cout, k, pad=k // 2, act=LEAKY)
        cin, conv = cout, conv + 1
    x = b.conv("conv19", x, 1024, 1024, 3, pad=1, act=LEAKY)
    x = b.conv("conv20", x, 1024, 1024, 3, pad=1, act=LEAKY)
    p = b.conv("conv21", passthrough, 512, 64, 1, act=LEAKY)
    p = b.add(SpaceToDepth("reorg", p, 2))
    x = b.add(Concat("route", [p, x]))
    x = b.conv("conv22", x, 256 + 1024, 1024, 3, pad=1, act=LEAKY)
    x = b.conv("conv23", x, 1024, 125, 1, act=None)     # 5 anchors x (4 box + 1 objectness + 20 classes)
    return b.model("yolov2", {"input": (batch, 3, *_size("yolov2", size))}, x)


POSENET_FRONT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 256, 256, 256, 256, 128)
POSENET_MAPS = 21


def posenet(batch=1, seed=0, size=None):
    """A convolutional pose machine: VGG-style front end, stage 1, then two
    refinement stages on the features concatenated with the last maps."""
    b = _Builder(seed)
    features, cin = _vgg_convs(b, "input", 3, POSENET_FRONT)
    x = b.conv("stage1.conv1", features, cin, 512, 1)
    maps = b.conv("stage1.conv2", x, 512, POSENET_MAPS, 1, act=None)
    for stage in (2, 3):
        x = b.add(Concat(f"stage{stage}.concat", [features, maps]))
        width = cin + POSENET_MAPS
        for index in range(1, 6):
            x = b.conv(f"stage{stage}.conv{index}", x, width, 128, 7, pad=3)
            width = 128
        x = b.conv(f"stage{stage}.conv6", x, 128, 128, 1)
        maps = b.conv(f"stage{stage}.conv7", x, 128, POSENET_MAPS, 1, act=None)
    return b.model("posenet", {"input": (batch, 3, *_size("posenet", size))}, maps)


def _fst_conv(b, name, x, cin, cout, k, stride=1, act="relu", norm=True):
    """Reflection padding by k // 2, a convolution, instance norm, ``act``."""
    p = k // 2
    x = b.add(Pad(f"{name}.pad", x, (0, 0, p, p, 0, 0, p, p), mode="reflect"))
    x = b.conv(f"{name}.conv2d", x, cin, cout, k, stride=stride, act=None if norm else act)
    return b.instance_norm(f"{name}.norm", x, cout, act=act) if norm else x


def _fst_upsample(b, name, x, cin, cout):
    """A 3x3 convolution of stride 1/2 (doubling H and W), instance norm, ReLU."""
    w = b._he((cin, cout, 3, 3), cin * 9)
    x = b.add(ConvTranspose2d(f"{name}.conv2d", x, w, b._bias(cout), stride=2, pads=1, output_padding=1))
    return b.instance_norm(f"{name}.norm", x, cout, act="relu")


def fst(batch=1, seed=0, size=None):
    """Fast style transfer (Johnson et al.) with reflection padding as
    pytorch/examples' TransformerNet pads, fractionally-strided convolutions
    (ConvTranspose) as the paper upsamples, and no output activation."""
    b = _Builder(seed)
    x = _fst_conv(b, "conv1", "input", 3, 32, 9)
    x = _fst_conv(b, "conv2", x, 32, 64, 3, stride=2)
    x = _fst_conv(b, "conv3", x, 64, 128, 3, stride=2)
    for block in range(1, 6):
        y = _fst_conv(b, f"res{block}.conv1", x, 128, 128, 3)
        y = _fst_conv(b, f"res{block}.conv2", y, 128, 128, 3, act=None)
        x = b.add(Binary(f"res{block}.add", (y, x), "Add"))
    x = _fst_upsample(b, "deconv1", x, 128, 64)
    x = _fst_upsample(b, "deconv2", x, 64, 32)
    x = _fst_conv(b, "deconv3", x, 32, 3, 9, act=None, norm=False)
    return b.model("fst", {"input": (batch, 3, *_size("fst", size))}, x)


RETINA_ANCHORS = 2      # anchors per pixel of each pyramid level
RETINA_HEADS = (("BboxHead", 4), ("ClassHead", 2), ("LandmarkHead", 10))


def _ssh(b, name, x):
    """RetinaFace's context module: 3x3 (128), 5x5 and 7x7 receptive fields
    (64 each, as stacked 3x3 convolutions) concatenated, then ReLU."""
    c3 = b.conv_bn(f"{name}.conv3X3.0", f"{name}.conv3X3.1", x, 256, 128, 3, pad=1)
    c5 = b.conv_bn(f"{name}.conv5X5_1.0", f"{name}.conv5X5_1.1", x, 256, 64, 3, pad=1, act="relu")
    c7 = b.conv_bn(f"{name}.conv7X7_2.0", f"{name}.conv7X7_2.1", c5, 64, 64, 3, pad=1, act="relu")
    c5 = b.conv_bn(f"{name}.conv5X5_2.0", f"{name}.conv5X5_2.1", c5, 64, 64, 3, pad=1)
    c7 = b.conv_bn(f"{name}.conv7x7_3.0", f"{name}.conv7x7_3.1", c7, 64, 64, 3, pad=1)
    return b.act(b.add(Concat(f"{name}.concat", [c3, c5, c7])), "relu")


def _fpn(b, stages):
    """1x1 laterals to 256 channels, top-down nearest upsampling added in,
    each sum smoothed by a 3x3 convolution; finest level first."""
    levels = [b.conv_bn(f"fpn.output{i}.0", f"fpn.output{i}.1", x, 256 * 2 ** i, 256, 1, act="relu")
              for i, x in enumerate(stages, start=1)]
    for i in range(len(levels) - 1, 0, -1):
        up = b.add(Resize(f"fpn.up{i + 1}", levels[i], (2.0, 2.0), mode="nearest", coordinate_mode="asymmetric",
                          nearest_mode="floor"))
        x = b.add(Binary(f"fpn.add{i}", (levels[i - 1], up), "Add"))
        levels[i - 1] = b.conv_bn(f"fpn.merge{i}.0", f"fpn.merge{i}.1", x, 256, 256, 3, pad=1, act="relu")
    return levels


def retinaface(batch=1, seed=0, size=None):
    """RetinaFace with a ResNet-50 backbone as biubug6's Pytorch_Retinaface
    builds it (three pyramid levels, strides 8, 16, 32); one output holding,
    per anchor, the box (4), the face/background softmax (2) and the five
    landmarks (10)."""
    b = _Builder(seed)
    levels = _fpn(b, _resnet50_stages(b, "body.")[1:])
    outputs = {head: [] for head, _ in RETINA_HEADS}
    for level, x in enumerate(levels):
        x = _ssh(b, f"ssh{level + 1}", x)
        for head, values in RETINA_HEADS:
            name = f"{head}.{level}"
            y = b.conv(f"{name}.conv1x1", x, 256, RETINA_ANCHORS * values, 1, act=None)
            y = b.add(Transpose(f"{name}.nhwc", y, (0, 2, 3, 1)))
            outputs[head].append(b.add(Reshape(f"{name}.rows", y, (0, -1, values))))
    parts = [b.add(Concat(f"{head}.levels", outputs[head], axis=1)) for head, _ in RETINA_HEADS]
    parts[1] = b.add(Softmax("ClassHead.softmax", parts[1], axis=2))
    x = b.add(Concat("detections", parts, axis=2))
    return b.model("retinaface", {"input": (batch, 3, *_size("retinaface", size))}, x)


def _size(name, size):
    """The input (H, W) of a network taking ``size=`` (an int or a pair;
    None: its default)."""
    default, multiple = SIZES[name]
    if size is None:
        return default
    hw = (size, size) if np.ndim(size) == 0 else tuple(size)
    if len(hw) != 2 or any(int(s) != s or s < multiple or s % multiple for s in hw):
        raise ModelError(f"{name}: size {size!r} must be one or two positive multiples of {multiple} "
                         f"(the default is {default[0]}x{default[1]})")
    return tuple(int(s) for s in hw)


def get(name, batch=1, seed=0, size=None):
    """A zoo model by name; ``size``: the input's (H, W) or side for the
    networks in SIZES (their default: the size the zoo is benchmarked at)."""
    if name not in ZOO:
        raise ModelError(f"no zoo model {name!r}; the zoo has {', '.join(ZOO)}")
    if size is None:
        return globals()[name](batch=batch, seed=seed)
    if name not in SIZES:
        raise ModelError(f"zoo model {name!r} has a fixed input size; size= is for {', '.join(SIZES)}")
    return globals()[name](batch=batch, seed=seed, size=size)
