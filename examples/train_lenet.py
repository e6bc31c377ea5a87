"""Train a LeNet-5 digit classifier and export its weights for the clnn examples.

The data is scikit-learn's bundled ``load_digits`` set (1,797 8x8 grayscale
digits).  Each image is scaled to [0, 1] and bilinearly resized to 28x28, and a
stratified, seeded split holds out 360 images as a test set that is never
trained on.  The model is the classic LeNet-5 layout (two 5x5 conv + ReLU +
2x2 max-pool stages, then three fully connected layers), trained on the CPU.

The result is written to ``examples/data/lenet_digits.npz``: the float32
parameters under their torch names (``conv1.weight``, ..., ``fc3.bias``) in
torch's layouts, plus the held-out ``test_images`` (N, 1, 28, 28) as uint8
``round(x * 255)`` and ``test_labels`` (N,) as uint8.  The script then reloads
that file and checks the held-out accuracy with a pure-numpy forward pass.

Run from the repository root::

    python examples/train_lenet.py

It needs ``torch==2.13.0`` and ``scikit-learn``, which are not dependencies of
clnn itself.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 0
TEST_SIZE = 360
EPOCHS = 60
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
MAX_SHIFT = 2
MIN_ACCURACY = 0.97
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "lenet_digits.npz")
PARAMETER_NAMES = [
    f"{layer}.{kind}"
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
    for kind in ("weight", "bias")
]


def load_data():
    """Return (train_x, train_y, test_x, test_y); images are (N, 1, 28, 28) float32 in [0, 1]."""
    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    images = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False).numpy()
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=TEST_SIZE, stratify=labels, random_state=SEED
    )
    return train_x, train_y, test_x, test_y


class LeNet5(nn.Module):
    """LeNet-5 for 1x28x28 inputs and 10 classes, producing logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build_model():
    """A freshly initialised LeNet5 whose state_dict keys are the exported names."""
    model = LeNet5()
    assert list(model.state_dict()) == PARAMETER_NAMES
    return model


def accuracy(model, images, labels):
    model.eval()
    with torch.no_grad():
        predictions = model(torch.from_numpy(images)).argmax(dim=1).numpy()
    return float((predictions == labels).mean())


def random_shift(images, generator):
    """Shift each image by up to MAX_SHIFT pixels in each direction, filling with zeros."""
    padded = F.pad(images, (MAX_SHIFT,) * 4)
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (len(images), 2), generator=generator)
    size = images.shape[-1]
    return torch.stack([
        image[:, dy:dy + size, dx:dx + size] for image, (dy, dx) in zip(padded, offsets.tolist())
    ])


def train(model, train_x, train_y):
    """Adam with cross-entropy over shuffled, randomly shifted mini-batches."""
    inputs = torch.from_numpy(train_x)
    targets = torch.from_numpy(train_y)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(random_shift(inputs[batch], generator)), targets[batch])
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(batch)
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1:3d}  train loss {total_loss / len(order):.4f}")


def export(model, test_x, test_y, path):
    """Write the parameters and the quantised held-out set to a compressed npz."""
    arrays = {name: t.numpy().astype(np.float32) for name, t in model.state_dict().items()}
    arrays["test_images"] = np.round(test_x * 255.0).astype(np.uint8)
    arrays["test_labels"] = test_y.astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **arrays)


def _conv2d(x, weight, bias, padding):
    """Stride-1 cross-correlation of NCHW ``x`` with OIHW ``weight``."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = weight.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # N, C, H', W', kh, kw
    return np.einsum("nchwij,ocij->nohw", windows, weight) + bias[None, :, None, None]


def _max_pool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _relu(x):
    return np.maximum(x, 0.0)


def numpy_forward(params, images):
    """LeNet-5 logits for float32 NCHW images, using numpy only."""
    x = _max_pool2(_relu(_conv2d(images, params["conv1.weight"], params["conv1.bias"], padding=2)))
    x = _max_pool2(_relu(_conv2d(x, params["conv2.weight"], params["conv2.bias"], padding=0)))
    x = x.reshape(len(x), -1)
    x = _relu(x @ params["fc1.weight"].T + params["fc1.bias"])
    x = _relu(x @ params["fc2.weight"].T + params["fc2.bias"])
    return x @ params["fc3.weight"].T + params["fc3.bias"]


def verify(path):
    """Reload the npz and return the numpy forward pass's accuracy on its test set."""
    with np.load(path) as data:
        params = {name: data[name] for name in PARAMETER_NAMES}
        images = data["test_images"].astype(np.float32) / 255.0
        labels = data["test_labels"]
    predictions = numpy_forward(params, images).argmax(axis=1)
    return float((predictions == labels).mean())


def main():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)

    train_x, train_y, test_x, test_y = load_data()
    print(f"train size: {len(train_x)}")
    print(f"test size: {len(test_x)}")

    model = build_model()
    train(model, train_x, train_y)
    print(f"torch test accuracy: {accuracy(model, test_x, test_y):.4f}")

    export(model, test_x, test_y, OUTPUT)
    print(f"saved {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")

    numpy_accuracy = verify(OUTPUT)
    print(f"numpy test accuracy (quantised saved images): {numpy_accuracy:.4f}")
    if numpy_accuracy < MIN_ACCURACY:
        raise SystemExit(f"held-out accuracy {numpy_accuracy:.4f} is below {MIN_ACCURACY}")


if __name__ == "__main__":
    main()
