"""The ``clnn`` command line."""

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import autotune, models
from .bench import layer_table, load_model, median_latency, zoo_markdown, zoo_rows
from .errors import ClnnError, DeviceError, InputError
from .log import show as show_log
from .ops.tuning import TuningCache, tuning_source
from .partition import tune
from .partition.cache import CalibrationCache
from .partition.calibrate import calibrate
from .runtime import all_devices, select
from .session import InferenceSession
from .timing import random_feeds
from .version import __version__


def _devices(args):
    found = all_devices()
    if not found:
        print("no devices found: install an OpenCL driver (pip install 'clnn[pocl]' brings PoCL)")
        return 1
    try:
        selected, note = select(args.devices), ""
    except DeviceError as exc:  # marking nothing is an answer here, not an error
        selected, note = [], f"  ({exc})".split("; devices:")[0]
    chosen = {d.id for d in selected}
    found += [d for d in selected if d not in found]  # GPU slices exist once selected
    platform = None
    for d in sorted(found, key=lambda d: d.id):
        if d.platform_key != platform:
            platform = d.platform_key
            print(f"{d.platform} [{d.backend}]")
        mark = "*" if d.id in chosen else " "
        print(f" {mark} {d.id:<22} {d.kind:<11} {d.compute_units:>4} CUs  "
              f"unified_memory={'yes' if d.unified_memory else 'no ':<3}  tuning={tuning_source(d)[1]:<7}  "
              f"{d.name}  (driver {d.driver_version})")
    print(f"* = selected by {args.devices or 'CLNN_DEVICES or all'}{note}")
    print(f"tuning = where kernel parameters come from: cache (clnn tune's records in {TuningCache().directory}), "
          "table (clnn's measured devices), default")
    return 0


def _read_inputs(items):
    """[(name or "", array)] from --input [NAME=]FILE.npy items."""
    found = []
    for item in items:
        name, _, path = item.rpartition("=")
        try:
            found.append((name, np.load(path)))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read input {path!r}: {exc}") from exc
    return found


def _write_outputs(path, infos, outputs):
    """Write the outputs to exactly ``path``: .npy for one, .npz for several."""
    try:
        with open(path, "wb") as f:
            if len(outputs) == 1:
                np.save(f, outputs[0])
            else:
                np.savez(f, **{i.name: v for i, v in zip(infos, outputs)})
    except OSError as exc:
        raise InputError(f"cannot write {path!r}: {exc}") from exc
    return "an .npy array" if len(outputs) == 1 else f"an .npz archive of {len(outputs)} arrays"


def _run(args):
    arrays = _read_inputs(args.input)
    # a symbolic batch (or a zoo model) takes the batch of the first input given
    batch = args.batch or next((a.shape[0] for _, a in arrays if a.ndim > 0 and a.shape[0] > 0), 1)
    model = load_model(args.model, batch=batch)
    if args.batch and model.batch != args.batch:
        raise InputError(f"--batch {args.batch}: the model's batch is fixed at {model.batch}")
    feeds = {name or model.input_names[0]: array for name, array in arrays}
    if len(model.input_names) > 1 and len(feeds) < len(model.input_names):
        raise InputError(f"the model has inputs {model.input_names}: give each as --input NAME=FILE.npy")
    session = InferenceSession(model, devices=args.devices, plan=_plan_argument(args.plan))
    outputs = session.run(None, feeds)
    for info, value in zip(model.outputs, outputs):
        rows = value.reshape(value.shape[0], -1).argmax(axis=1) if value.ndim > 1 else [value.argmax()]
        print(f"{info.name}: shape {list(value.shape)}, min {value.min():.6g}, max {value.max():.6g}, "
              f"argmax per row {[int(r) for r in rows]}")
    if args.output:
        what = _write_outputs(args.output, model.outputs, outputs)
        print(f"wrote {args.output} ({what})")
    return 0


def _calibrate(args):
    chosen = select(args.devices)
    cache = CalibrationCache()
    for spec in args.models or models.ZOO:
        model = load_model(spec, batch=args.batch)
        with tqdm(desc=model.name, unit="step", file=sys.stderr, disable=None, leave=False) as bar:
            result = calibrate(model, chosen, cache=cache, progress=_progress(bar))
        if result.measured:
            print(f"{model.name}: {result.measured} layer shapes measured in {result.seconds:.1f} s", file=sys.stderr)
        else:
            print(f"{model.name}: calibrated already (from the cache)", file=sys.stderr)
    for d in chosen:
        print(f"{d.id}: {result.launch[d.id] * 1e6:.1f} us per launch, {result.run[d.id] * 1e6:.1f} us per run")
    for (source, target), link in sorted(result.links.items()):
        if "host" not in (source, target):
            rate = f"{1e-9 / link.per_byte:.2f} GB/s" if link.per_byte > 0 else "no copy"
            print(f"{source} -> {target}: {link.latency * 1e6:.1f} us latency, {rate}")
    print(f"calibration stored in {cache.directory}")
    return 0


def _tune(args):
    for device in select(args.devices):
        with tqdm(desc=device.id, total=tune.candidate_count(device), unit="candidate", file=sys.stderr,
                  disable=None, leave=False) as bar:
            def heard(knob, value, seconds):
                bar.set_postfix_str(f"{knob} {autotune.value_text(value)}"[:40], refresh=False)
                bar.update()
            found, path = tune.tune_and_save(device, args.runs, heard)
        print(autotune.summary(device, found, path))
    return 0


def _progress(bar):
    """A calibration progress callback moving a tqdm bar (which draws nothing
    where stderr is not a terminal, so logs get no carriage returns)."""
    def show(done, total, what):
        bar.total = total
        bar.set_postfix_str(what[:40], refresh=False)
        bar.update(done - bar.n)
    return show


def _plan_argument(text):
    """--plan: auto, comma-separated shares, or a plan file."""
    if text is None or text == "auto":
        return "auto"
    try:
        return [float(s) for s in text.split(",")]
    except ValueError:
        return text


def _bench_zoo(args):
    chosen = select(args.devices)
    batches = [int(b) for b in args.batches.split(",")]

    def show(row):
        print(f"  {row['model']} batch {row['batch']}: auto {row['auto_ms']:.3f} ms, speedup {row['speedup']:.2f}, "
              f"efficiency {row['efficiency']:.2f}, planning {row['planning_s']:.1f} s", flush=True)

    names = args.models.split(",") if args.models else None
    rows = zoo_rows(chosen, batches, args.runs, args.warmup, names=names, progress=show)
    table = zoo_markdown(rows, chosen)
    print(table)
    if args.output:
        stem = Path(args.output)
        stem.with_suffix(".md").write_text(table + "\n")
        stem.with_suffix(".json").write_text(json.dumps({"devices": [d.id for d in chosen], "rows": rows}, indent=1))
        print(f"wrote {stem.with_suffix('.md')} and {stem.with_suffix('.json')}")
    return 0


def _bench(args):
    if args.zoo:
        return _bench_zoo(args)
    if not args.model:
        raise InputError("clnn bench needs a MODEL (a zoo name or an ONNX file) or --zoo")
    model = load_model(args.model, batch=args.batch)
    feeds = random_feeds(model)
    chosen = select(args.devices)
    print(f"{model.name} batch {model.batch}: {model.flops() / 1e9:.4g} GFLOP, median of {args.runs} runs "
          f"after {args.warmup} warm-up")
    session = None
    for device in chosen:
        session = InferenceSession(model, devices=[device], plan=[1.0])
        median, _ = median_latency(session, feeds, args.runs, args.warmup)
        print(f"  {device.id:<24} {median * 1e3:10.3f} ms  {model.flops() / median / 1e9:8.1f} GFLOP/s  "
              f"({device.name})")
    traced = f"{chosen[-1].id} alone"
    if args.plan:
        session = InferenceSession(model, devices=chosen, plan=_plan_argument(args.plan))
        median, _ = median_latency(session, feeds, args.runs, args.warmup)
        print(f"  {'plan ' + args.plan:<24} {median * 1e3:10.3f} ms  {model.flops() / median / 1e9:8.1f} GFLOP/s")
        print(f"\nper-layer kernel time (ms) in the last run of the plan:\n{layer_table(session)}")
        traced = f"the plan {args.plan}"
    if args.trace:
        session.run(None, feeds, trace=args.trace)
        print(f"wrote the Chrome trace of one run of {traced} to {args.trace}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="clnn", description="OpenCL inference on the CPU and GPU at once")
    parser.add_argument("--version", action="version", version=f"clnn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output (placement, memory paths)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("devices", help="list every platform and device")
    p.add_argument("--devices", help="a selector to mark (default: CLNN_DEVICES or all)")
    p.set_defaults(func=_devices)

    p = commands.add_parser("run", help="run a model on inputs from .npy files")
    p.add_argument("model", help="an ONNX file or a zoo name")
    p.add_argument("--input", action="append", required=True, metavar="[NAME=]FILE.npy",
                   help="an input array (repeat for several inputs)")
    p.add_argument("--output", help="write the outputs to exactly this path (.npy format for one output, .npz for "
                   "several)")
    p.add_argument("--devices", help="device selector (default: CLNN_DEVICES or all)")
    p.add_argument("--plan", help="auto (default), shares such as 0.3,0.7, or a plan file")
    p.add_argument("--batch", type=int, help="batch size for a symbolic batch dimension (default: the "
                   "first input's)")
    p.set_defaults(func=_run)

    p = commands.add_parser("bench", help="median latency of a model on each device (and a plan)")
    p.add_argument("model", nargs="?", help="an ONNX file or a zoo name")
    p.add_argument("--zoo", action="store_true", help="every zoo model: single devices against plan=auto")
    p.add_argument("--batches", default="1,16", help="with --zoo: batch sizes (default 1,16)")
    p.add_argument("--models", help="with --zoo: these zoo models only (comma-separated)")
    p.add_argument("--output", help="with --zoo: write OUTPUT.md and OUTPUT.json")
    p.add_argument("--devices", help="device selector (default: CLNN_DEVICES or all)")
    p.add_argument("--plan", help="also time this plan: auto, shares such as 0.3,0.7, or a plan file")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--runs", type=int, default=10, help="timed runs per device or plan; the median is shown "
                   "(default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before them (default 2)")
    p.add_argument("--trace", help="write a Chrome trace of one run here: of the plan with --plan, else of the last "
                   "device alone")
    p.set_defaults(func=_bench)

    p = commands.add_parser("calibrate", help="measure devices for plan='auto' (cached per device)")
    p.add_argument("models", nargs="*", help="zoo names or ONNX files (default: the whole zoo)")
    p.add_argument("--devices", help="device selector (default: CLNN_DEVICES or all)")
    p.add_argument("--batch", type=int, default=1, help="batch size to calibrate for (default 1)")
    p.set_defaults(func=_calibrate)

    p = commands.add_parser("tune", help="time kernel parameters on each device and keep the best (cached per "
                            "device)")
    p.add_argument("--devices", help="device selector (default: CLNN_DEVICES or all)")
    p.add_argument("--runs", type=int, default=10, help="timed passes per candidate and layer (default 10)")
    p.set_defaults(func=_tune)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.verbose:
        show_log(logging.DEBUG)
    try:
        return args.func(args)
    except ClnnError as exc:
        print(f"clnn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
