"""The ``clnn`` command line."""

import argparse
import logging
import sys

from . import __version__
from .errors import ClnnError
from .runtime import all_devices, select


def _devices(args):
    found = all_devices()
    chosen = {d.id for d in select(args.devices)} if found else set()
    if not found:
        print("no devices found: install an OpenCL driver (pip install 'clnn[pocl]' brings PoCL)")
        return 1
    platform = None
    for d in sorted(found, key=lambda d: d.id):
        if d.platform_key != platform:
            platform = d.platform_key
            print(f"{d.platform} [{d.backend}]")
        mark = "*" if d.id in chosen else " "
        print(f" {mark} {d.id:<22} {d.kind:<11} {d.compute_units:>4} CUs  "
              f"unified_memory={'yes' if d.unified_memory else 'no ':<3}  {d.name}  (driver {d.driver_version})")
    print(f"* = selected by {args.devices or 'CLNN_DEVICES or all'}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="clnn", description="OpenCL inference on the CPU and GPU at once")
    parser.add_argument("--version", action="version", version=f"clnn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output (placement, memory paths)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("devices", help="list every platform and device")
    p.add_argument("--devices", help="a selector to mark (default: CLNN_DEVICES or all)")
    p.set_defaults(func=_devices)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="clnn: %(message)s")
    try:
        return args.func(args)
    except ClnnError as exc:
        print(f"clnn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
