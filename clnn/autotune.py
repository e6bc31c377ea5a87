"""``python -m clnn.autotune``: a device's kernel parameters timed on it
(clnn.partition.tune), printed candidate by candidate, the best stored as
its tuning record with ``--save`` (as ``clnn tune`` does).

    python -m clnn.autotune [--devices nvidia] [--runs 10] [--save]
"""

import argparse
import sys

from .errors import ClnnError
from .partition.tune import autotune, tune_and_save
from .runtime import select


def summary(device, found, path):
    """One line on what a tuning run found and where it went."""
    where = f"stored in {path}" if path else "kept in memory for this process"
    return (f"{device.id}: representative layers {found.start_seconds * 1e3:.3f} ms with the tuning it had, "
            f"{found.tuned_seconds * 1e3:.3f} ms tuned ({found.seconds:.0f} s); {where}")


def value_text(value):
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m clnn.autotune",
                                     description="times kernel parameters on devices and prints the best")
    parser.add_argument("--devices", default="gpu", help="device selector (default: gpu)")
    parser.add_argument("--runs", type=int, default=10, help="timed passes per candidate and layer (default 10)")
    parser.add_argument("--save", action="store_true", help="store the best as the device's tuning record in "
                        "clnn's cache folder (as clnn tune does)")
    args = parser.parse_args(argv)

    def show(knob, value, s):
        print(f"  {knob:<20} {s * 1e3:9.3f} ms  {value_text(value)}", flush=True)
    try:
        for device in select(args.devices):
            print(f"{device}:")
            if args.save:
                found, path = tune_and_save(device, args.runs, show)
                print(f"  best: {found.tuning}\n{summary(device, found, path)}")
            else:
                print(f"  best: {autotune(device, reps=args.runs, report=show).tuning}")
    except ClnnError as exc:  # one clean line, as the clnn command prints
        print(f"clnn.autotune: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
