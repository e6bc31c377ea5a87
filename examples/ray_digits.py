"""The LeNet-5 digits job of lenet.py spread over a Ray cluster with Ray Data.

The held-out digits (repeated ``--repeat`` times, to give the cluster
something to do) flow through a preprocessing step (uint8 pixels to float32
in [0, 1]) and then through ``--actors`` clnn sessions, one per Ray actor,
``--batch-size`` digits per session run. The script prints the accuracy and
the throughput. Without ``--address`` it starts a local Ray instance on this
machine, whose cores the actors share; with one it joins that cluster (clnn
must be installed on every node, where one actor per node is usually best).
Needs the ray extra: pip install '.[pocl,ray]'.

    python examples/ray_digits.py --actors 2 --repeat 20
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import ray

import clnn
import clnn.ray

DATA = Path(__file__).resolve().parent / "data" / "lenet_digits.npz"


def trained_lenet(data, batch):
    """lenet.py's network: the zoo's LeNet-5 with the trained weights."""
    model = clnn.models.lenet5(batch=batch)
    model.load_state_dict({k: data[k] for k in data.files if k.endswith((".weight", ".bias"))})
    return model


def to_float(batch):
    batch["image"] = batch.pop("pixels").astype(np.float32) / 255.0
    return batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=2, help="clnn sessions, one per Ray actor (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="digits per session run (default 32)")
    parser.add_argument("--repeat", type=int, default=20, help="times the 360 held-out digits are fed (default 20)")
    parser.add_argument("--address", help="a Ray cluster to join (default: start a local one)")
    parser.add_argument("--cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    args = parser.parse_args(argv)

    data = np.load(DATA)
    images, labels = data["test_images"], data["test_labels"].astype(np.int64)
    ray.init(address=args.address, num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    rows = [{"pixels": images[i % len(images)], "label": labels[i % len(images)]}
            for i in range(len(images) * args.repeat)]
    predictor = dict(model=trained_lenet(data, args.batch_size), input_column="image", output_columns="logits")
    started = time.perf_counter()
    # a few blocks per actor: each block ends in one padded session run
    ds = (ray.data.from_items(rows, override_num_blocks=4 * args.actors)
          .map_batches(to_float)
          .map_batches(clnn.ray.Predictor, fn_constructor_kwargs=predictor, batch_size=args.batch_size,
                       compute=ray.data.ActorPoolStrategy(size=args.actors)))
    right = total = 0
    for batch in ds.iter_batches(batch_size=None):
        if not total:  # the actors are up and running
            first, first_rows = time.perf_counter(), len(batch["label"])
        right += int((batch["logits"].argmax(axis=1) == batch["label"]).sum())
        total += len(batch["label"])
    finished = time.perf_counter()
    ray.shutdown()

    accuracy = right / total
    print(f"clnn {clnn.__version__} on Ray {ray.__version__}: LeNet-5 on {total} digits "
          f"({len(images)} held out x {args.repeat}), {args.actors} actors, batches of {args.batch_size}")
    print(f"accuracy: {accuracy:.1%} ({right}/{total})")
    steady = (total - first_rows) / (finished - first) if finished > first else float("nan")
    print(f"throughput: {total / (finished - started):.0f} digits/s over {finished - started:.2f} s including the "
          f"actors' start, {steady:.0f} digits/s once they ran")
    return 0 if accuracy >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
