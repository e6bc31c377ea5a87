"""Models exported by torch's two ONNX exporters, loaded with clnn and
checked against onnxruntime (issue 13).

Each torchvision and timm definition in MODELS is built with random weights
(no download; parameters initialised to one value are perturbed), put in
eval mode and exported with ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter) and
``dynamo=True`` at a small input (``--exporters torchscript-batch,dynamo-batch``:
the same with a symbolic batch, checked at batch 3). Exports run one per
subprocess (a crash or a hang of an exporter loses one cell) and are cached
under ``--cache``.
Every file is then loaded with clnn, run on the selected devices (all on
the first, or ``--split`` over all of them) and compared with onnxruntime.
A cell's status is one of

- ``matched``: clnn's outputs are within ``--tol`` (relative to the largest
  output magnitude) of onnxruntime's;
- ``mismatch``: clnn ran, the error is larger;
- ``refused``: clnn.load raised ModelError (the message says what);
- ``error``: anything else clnn raised (a bug);
- ``export-failed``: torch could not export the model (not clnn's doing);
- ``loaded`` (with ``--load-only``): clnn.load took it; nothing was run.

The table goes to stdout and to ``--out`` (.json and .md). Examples::

    python benchmarks/torch_exports.py                      # every model
    python benchmarks/torch_exports.py --models resnet18,tv_lraspp --exporters dynamo
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

EXPORTERS = ("torchscript", "dynamo")
# with a symbolic batch (--exporters torchscript-batch,dynamo-batch)
BATCH_EXPORTERS = ("torchscript-batch", "dynamo-batch")
DEFAULT_CACHE = "/tmp/exports/onnx-v2"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "torch-exports")

# name -> (library, constructor, keyword arguments, input side, wrapper)
# ``wrapper``: "dict" takes the values of a dict output (segmentation, FPN),
# "list" a list output (timm's features_only backbones)
TV, TIMM, TVSEG, TVDET = "torchvision", "timm", "torchvision.segmentation", "torchvision.detection"
MODELS = {
    # torchvision classification
    "tv_resnet18": (TV, "resnet18", {}, 64, None),
    "tv_resnet50": (TV, "resnet50", {}, 64, None),
    "tv_resnext50_32x4d": (TV, "resnext50_32x4d", {}, 64, None),
    "tv_wide_resnet50_2": (TV, "wide_resnet50_2", {}, 64, None),
    "tv_mobilenet_v2": (TV, "mobilenet_v2", {}, 64, None),
    "tv_mobilenet_v3_small": (TV, "mobilenet_v3_small", {}, 64, None),
    "tv_mobilenet_v3_large": (TV, "mobilenet_v3_large", {}, 64, None),
    "tv_shufflenet_v2_x0_5": (TV, "shufflenet_v2_x0_5", {}, 64, None),
    "tv_shufflenet_v2_x1_0": (TV, "shufflenet_v2_x1_0", {}, 64, None),
    "tv_mnasnet0_5": (TV, "mnasnet0_5", {}, 64, None),
    "tv_squeezenet1_0": (TV, "squeezenet1_0", {}, 64, None),
    "tv_squeezenet1_1": (TV, "squeezenet1_1", {}, 64, None),
    "tv_densenet121": (TV, "densenet121", {}, 64, None),
    "tv_efficientnet_b0": (TV, "efficientnet_b0", {}, 64, None),
    "tv_efficientnet_v2_s": (TV, "efficientnet_v2_s", {}, 64, None),
    "tv_regnet_x_400mf": (TV, "regnet_x_400mf", {}, 64, None),
    "tv_regnet_y_400mf": (TV, "regnet_y_400mf", {}, 64, None),
    "tv_convnext_tiny": (TV, "convnext_tiny", {}, 64, None),
    "tv_googlenet": (TV, "googlenet", {"aux_logits": False, "init_weights": True}, 64, None),
    "tv_inception_v3": (TV, "inception_v3", {"aux_logits": False, "init_weights": True}, 96, None),
    "tv_alexnet": (TV, "alexnet", {}, 224, None),
    "tv_vgg11_bn": (TV, "vgg11_bn", {}, 224, None),
    "tv_vit_b_16": (TV, "vit_b_16", {"image_size": 64}, 64, None),
    "tv_swin_t": (TV, "swin_t", {}, 64, None),
    # torchvision segmentation
    "tv_fcn_resnet50": (TVSEG, "fcn_resnet50", {"weights_backbone": None}, 64, "dict"),
    "tv_deeplabv3_mobilenet_v3_large": (TVSEG, "deeplabv3_mobilenet_v3_large", {"weights_backbone": None}, 64,
                                        "dict"),
    "tv_lraspp_mobilenet_v3_large": (TVSEG, "lraspp_mobilenet_v3_large", {"weights_backbone": None}, 64, "dict"),
    # torchvision detection backbones (static graphs)
    "tv_resnet18_fpn": (TVDET, "resnet_fpn_backbone", {"backbone_name": "resnet18", "weights": None}, 64, "dict"),
    "tv_mobilenet_v3_fpn": (TVDET, "mobilenet_backbone", {"backbone_name": "mobilenet_v3_large", "weights": None,
                                                          "fpn": True}, 64, "dict"),
    # timm
    "timm_resnet18": (TIMM, "resnet18", {}, 64, None),
    "timm_resnet50d": (TIMM, "resnet50d", {}, 64, None),
    "timm_efficientnet_b0": (TIMM, "efficientnet_b0", {}, 64, None),
    "timm_tf_efficientnet_b0": (TIMM, "tf_efficientnet_b0", {}, 64, None),
    "timm_mobilenetv3_large_100": (TIMM, "mobilenetv3_large_100", {}, 64, None),
    "timm_mobilenetv3_small_050": (TIMM, "mobilenetv3_small_050", {}, 64, None),
    "timm_convnext_atto": (TIMM, "convnext_atto", {}, 64, None),
    "timm_regnetx_002": (TIMM, "regnetx_002", {}, 64, None),
    "timm_regnety_002": (TIMM, "regnety_002", {}, 64, None),
    "timm_ghostnet_100": (TIMM, "ghostnet_100", {}, 64, None),
    "timm_rexnet_100": (TIMM, "rexnet_100", {}, 64, None),
    "timm_mixnet_s": (TIMM, "mixnet_s", {}, 64, None),
    "timm_densenet121": (TIMM, "densenet121", {}, 64, None),
    "timm_dla34": (TIMM, "dla34", {}, 64, None),
    "timm_cspresnet50": (TIMM, "cspresnet50", {}, 64, None),
    "timm_res2net50_14w_8s": (TIMM, "res2net50_14w_8s", {}, 64, None),
    "timm_repvgg_a0": (TIMM, "repvgg_a0", {}, 64, None),
    "timm_lcnet_050": (TIMM, "lcnet_050", {}, 64, None),
    "timm_hrnet_w18_small": (TIMM, "hrnet_w18_small", {}, 64, None),
    "timm_resnest14d": (TIMM, "resnest14d", {}, 64, None),
    "timm_skresnet18": (TIMM, "skresnet18", {}, 64, None),
    "timm_efficientvit_b0": (TIMM, "efficientvit_b0", {}, 64, None),
    "timm_mobilevit_xxs": (TIMM, "mobilevit_xxs", {}, 64, None),
    "timm_poolformer_s12": (TIMM, "poolformer_s12", {}, 64, None),
    "timm_vit_tiny_patch16_224": (TIMM, "vit_tiny_patch16_224", {"img_size": 64}, 64, None),
    "timm_edgenext_xx_small": (TIMM, "edgenext_xx_small", {}, 64, None),
    "timm_mobilenetv4_conv_small": (TIMM, "mobilenetv4_conv_small", {}, 64, None),
    "timm_fastvit_t8": (TIMM, "fastvit_t8", {}, 64, None),
    "timm_levit_128s": (TIMM, "levit_128s", {"img_size": 64}, 64, None),
    "timm_resnet18_features": (TIMM, "resnet18", {"features_only": True}, 64, "list"),
    "timm_efficientnet_b0_features": (TIMM, "efficientnet_b0", {"features_only": True}, 64, "list"),
}


# exporting (a subprocess per model and exporter) --------------------------------------

def build(name):
    import torch
    library, constructor, kwargs, side, wrapper = MODELS[name]
    torch.manual_seed(0)
    if library == TIMM:
        import timm
        net = timm.create_model(constructor, pretrained=False, **kwargs)
    elif library == TVSEG:
        import torchvision.models.segmentation as seg
        net = getattr(seg, constructor)(weights=None, **kwargs)
    elif library == TVDET:
        from torchvision.models.detection import backbone_utils
        from torchvision.models import mobilenet_v3_large, resnet18  # noqa: F401 (backbone names)
        net = getattr(backbone_utils, constructor)(**kwargs)
    else:
        import torchvision.models as tv
        net = getattr(tv, constructor)(weights=None, **kwargs)
    _perturb(net)
    if wrapper:
        net = _Outputs(net, wrapper)
    return net.eval(), torch.randn(1, 3, side, side)


def _perturb(net):
    """Random values added to every parameter that its initialisation left
    constant (zero-initialised heads, ones and zeros of normalisations,
    timm's zeroed last BatchNorm of residual blocks, ConvNeXt's layer scale
    of 1e-6), so that no branch of the model computes nothing; BatchNorm
statistics are random too."""
    import torch
    with torch.no_grad():
        for p in net.parameters():
            if p.numel() > 1 and bool((p == p.reshape(-1)[0]).all()):
                p.add_(0.1 * torch.randn_like(p))
        for name, b in net.named_buffers():   # BatchNorm's statistics, which BatchNorm folding reads
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)


def _outputs_class():
    import torch

    class Outputs(torch.nn.Module):
        """A dict or list output as a tuple (the exporters flatten both, but a
        tuple names them in order)."""

        def __init__(self, net, kind):
            super().__init__()
            self.net, self.kind = net, kind

        def forward(self, x):
            y = self.net(x)
            return tuple(y.values()) if self.kind == "dict" else tuple(y)

    return Outputs


def _Outputs(net, kind):
    return _outputs_class()(net, kind)


def export_one(name, exporter, path):
    """``exporter``: torchscript or dynamo, with ``-batch`` a symbolic batch."""
    import torch
    net, x = build(name)
    symbolic = exporter.endswith("-batch")
    if symbolic:   # a batch of 2 traced: a batch of 1 would be specialised
        x = torch.cat([x, x])
    with torch.no_grad():
        if exporter.startswith("torchscript"):
            torch.onnx.export(net, (x,), path, dynamo=False, input_names=["x"], opset_version=17,
                              dynamic_axes={"x": {0: "batch"}} if symbolic else None)
        else:
            shapes = {"x": {0: torch.export.Dim("batch", min=1, max=64)}} if symbolic else None
            torch.onnx.export(net, (x,), path, dynamo=True, input_names=["x"], external_data=False,
                              dynamic_shapes=shapes)


def export_all(names, exporters, cache, timeout):
    """{(name, exporter): error text} of the exports that failed; the others are in ``cache``."""
    os.makedirs(cache, exist_ok=True)
    failed = {}
    for name in names:
        for exporter in exporters:
            path = os.path.join(cache, f"{name}-{exporter}.onnx")
            failure = path + ".failed"
            if os.path.exists(path):
                continue
            if os.path.exists(failure):
                with open(failure) as f:
                    failed[name, exporter] = f.read()
                continue
            started = time.time()
            try:
                done = subprocess.run([sys.executable, __file__, "--export-one", name, exporter, path],
                                      capture_output=True, text=True, timeout=timeout)
                error = None if done.returncode == 0 and os.path.exists(path) else _last_line(done.stderr)
            except subprocess.TimeoutExpired:
                error = f"export took over {timeout} s"
            print(f"exported {name} ({exporter}) in {time.time() - started:.0f} s"
                  + (f": FAILED {error}" if error else ""), flush=True)
            if error:
                failed[name, exporter] = error
                with open(failure, "w") as f:
                    f.write(error)
    return failed


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    return (errors or lines or ["no output"])[-1][:300]


# checking ------------------------------------------------------------------------------

def rel_err(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    diff = np.abs(actual - expected)
    return float("inf") if np.isnan(diff).any() else float(diff.max() / max(np.abs(expected).max(), 1e-30))


def check(path, devices, split, tol, load_only=False):
    """(status, message, max rel err) of one exported file; ``load_only``:
    "loaded" where clnn.load takes it, without running it."""
    import onnxruntime
    import clnn
    from clnn.runtime.selector import select
    rng = np.random.default_rng(0)
    ort = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    # a symbolic batch is fed 3 (not the size traced)
    symbolic = any(not isinstance(d, int) for i in ort.get_inputs() for d in i.shape)
    feeds = {i.name: rng.standard_normal([d if isinstance(d, int) else 3 for d in i.shape]).astype(np.float32)
             for i in ort.get_inputs()}
    try:
        model = clnn.load(path, batch=3 if symbolic else 1)
    except clnn.ModelError as exc:
        return "refused", str(exc), None
    except Exception as exc:  # a bug: anything but a ModelError
        return "error", f"load: {type(exc).__name__}: {exc}", None
    if load_only:
        return "loaded", "", None
    expected = ort.run(None, feeds)
    try:
        count = len(select(devices))
        shares = [1.0 / count] * count if split else [1.0] + [0.0] * (count - 1)
        # a session of the file builds itself for the batch fed, as onnxruntime's does
        sess = clnn.InferenceSession(path if symbolic else model, devices=devices, plan=shares)
        actual = sess.run(None, feeds)
    except Exception as exc:
        return "error", f"run: {type(exc).__name__}: {exc}", None
    err = max(rel_err(a, e) for a, e in zip(actual, expected)) if len(actual) == len(expected) else float("inf")
    return ("matched" if err <= tol else "mismatch"), "", err


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated names (default: all)")
    parser.add_argument("--exporters", default=",".join(EXPORTERS))
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="where exports are kept")
    parser.add_argument("--devices", default=None, help="clnn devices (default: CLNN_DEVICES or all)")
    parser.add_argument("--split", action="store_true", help="split every layer evenly over the devices")
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per export")
    parser.add_argument("--list", action="store_true", help="print the model names and stop")
    parser.add_argument("--export-only", action="store_true", help="export what is not cached, check nothing")
    parser.add_argument("--load-only", action="store_true", help="only load with clnn (status loaded or refused)")
    parser.add_argument("--out", default=RESULTS, help="path less .json/.md of the table ('' for none)")
    parser.add_argument("--export-one", nargs=3, metavar=("MODEL", "EXPORTER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_one:
        export_one(*args.export_one)
        return 0
    if args.list:
        print("\n".join(MODELS))
        return 0
    names = args.models.split(",") if args.models else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    exporters = args.exporters.split(",")
    if set(exporters) - set(EXPORTERS + BATCH_EXPORTERS):
        parser.error(f"exporters are among {', '.join(EXPORTERS + BATCH_EXPORTERS)}")
    failed = export_all(names, exporters, args.cache, args.timeout)
    if args.export_only:
        return 0
    rows = []
    for name in names:
        for exporter in exporters:
            row = {"model": name, "exporter": exporter}
            if (name, exporter) in failed:
                row.update(status="export-failed", message=failed[name, exporter], relerr=None)
            else:
                status, message, err = check(os.path.join(args.cache, f"{name}-{exporter}.onnx"),
                                             args.devices, args.split, args.tol, args.load_only)
                row.update(status=status, message=message, relerr=err)
            rows.append(row)
            err = "" if row["relerr"] is None else f"{row['relerr']:.2e}"
            print(f"{name:34s} {exporter:12s} {row['status']:13s} {err:9s} {row['message'][:200]}", flush=True)
    summary = _summary(rows, exporters)
    print(summary)
    if args.out:
        _write(args.out, rows, summary)
    return 0


def _summary(rows, exporters):
    statuses = ("matched", "mismatch", "loaded", "refused", "error", "export-failed")
    lines = ["| exporter | " + " | ".join(statuses) + " |", "|---" * (len(statuses) + 1) + "|"]
    for exporter in exporters:
        counts = [sum(r["exporter"] == exporter and r["status"] == s for r in rows) for s in statuses]
        lines.append(f"| {exporter} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines)


def _write(out, rows, summary):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write("# torch exports in clnn\n\n`python benchmarks/torch_exports.py` (torch "
                f"{_version('torch')}, torchvision {_version('torchvision')}, timm {_version('timm')}, "
                f"onnxruntime {_version('onnxruntime')}): random weights, eval mode, batch 1, "
                "clnn on the first device against onnxruntime (max relative error).\n\n")
        f.write(summary + "\n\n| model | exporter | status | max rel err | message |\n|---|---|---|---|---|\n")
        for r in rows:
            err = "" if r["relerr"] is None else f"{r['relerr']:.1e}"
            message = r["message"].replace("|", "\\|").replace("\n", " ")[:300]
            f.write(f"| {r['model']} | {r['exporter']} | {r['status']} | {err} | {message} |\n")


def _version(package):
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:  # not installed
        return "?"


if __name__ == "__main__":
    sys.exit(main())
