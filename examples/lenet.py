"""Classify handwritten digits with a trained LeNet-5 on clnn.

The network is the zoo's lenet5 with weights trained by train_lenet.py on
scikit-learn's digits (8x8 images resized to 28x28); the held-out digits it
never saw during training ship beside it in data/lenet_digits.npz. This
script runs them through clnn on the default devices (CLNN_DEVICES, or every
device found), prints the accuracy, a few digits with their predictions, the
placement plan and the latency.

    python examples/lenet.py
"""

import sys
import time
from pathlib import Path

import numpy as np

import clnn

DATA = Path(__file__).resolve().parent / "data" / "lenet_digits.npz"
SHADES = " .:-=+*#%@"


def ascii_digit(image):
    """A 28x28 image as 14 lines of 14 characters (2x2 pixels each)."""
    small = image.reshape(14, 2, 14, 2).mean(axis=(1, 3))
    levels = np.minimum((small * len(SHADES)).astype(int), len(SHADES) - 1)
    return ["".join(SHADES[v] for v in row) for row in levels]


def show(images, labels, predictions):
    """Digits side by side, each headed by its label and the prediction."""
    pictures = [ascii_digit(img[0]) for img in images]
    heads = [f"{'ok' if p == t else 'MISS'} {p} (is {t})".ljust(14) for p, t in zip(predictions, labels)]
    print("   ".join(heads))
    for row in zip(*pictures):
        print("   ".join(row))


def main():
    data = np.load(DATA)
    images = data["test_images"].astype(np.float32) / 255.0
    labels = data["test_labels"].astype(int)

    model = clnn.models.lenet5(batch=len(images))
    model.load_state_dict({k: data[k] for k in data.files if k.endswith((".weight", ".bias"))})
    session = clnn.InferenceSession(model)

    (logits,) = session.run(None, {"input": images})  # first run: kernels built and cached
    timings = []
    for _ in range(10):
        started = time.perf_counter()
        session.run(None, {"input": images})
        timings.append(time.perf_counter() - started)
    predictions = logits.argmax(axis=1)
    accuracy = float((predictions == labels).mean())

    print(f"clnn {clnn.__version__}: LeNet-5 on {len(images)} held-out handwritten digits")
    print("devices: " + ", ".join(f"{d.id} ({d.name})" for d in session.devices))
    print(f"accuracy: {accuracy:.1%} ({int((predictions == labels).sum())}/{len(labels)})\n")
    show(images[:5], labels[:5], predictions[:5])
    print("\nplacement plan:")
    print(session.plan.table(model))
    median = float(np.median(timings))
    print(f"\nlatency: {median * 1e3:.2f} ms per batch of {len(images)} (median of {len(timings)} runs), "
          f"{median / len(images) * 1e6:.1f} us per digit")
    return 0 if accuracy >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
