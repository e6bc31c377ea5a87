"""The package's shape: imports run one way, from the tools down to the
leaves, with no cycles (deferred imports inside functions count too); clnn
imports without OpenCL; building a model leaves the caller's layers as they
were."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

import clnn
from clnn.ops.conv import Conv2d
from clnn.ops.eltwise import Activation, Binary, ScaleShift
from clnn.ops.registry import entries

PACKAGE = Path(clnn.__file__).parent

# lowest first; a module may import from its own floor or any below it
FLOORS = [
    ("leaves", {"clnn.errors", "clnn.box", "clnn.timing", "clnn.trace", "clnn.sources", "clnn.version", "clnn.log",
                "clnn.host", "clnn.cache_files"}),
    ("runtime", {"clnn.runtime", "clnn.cuda"}),
    ("ops", {"clnn.ops"}),
    ("graph", {"clnn.graph", "clnn.passes"}),
    ("onnx and zoo", {"clnn.onnx_common", "clnn.onnx_types", "clnn.onnx_fold", "clnn.onnx_patterns",
                      "clnn.onnx_export", "clnn.model", "clnn.onnx_import",
                      "clnn.models"}),
    ("execution", {"clnn.storage", "clnn.plan", "clnn.schedule", "clnn.executor"}),
    ("partition", {"clnn.partition"}),
    ("session", {"clnn.session", "clnn.session_options"}),
    ("tools", {"clnn.bench", "clnn.microbench", "clnn.microbench_peers", "clnn.autotune", "clnn.cli", "clnn.__main__",
               "clnn.ray"}),
    ("package", {"clnn"}),
]


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def floor(name):
    for index, (_, members) in enumerate(FLOORS):
        if name in members or any(name.startswith(m + ".") for m in members if m != "clnn"):
            return index
    raise AssertionError(f"{name} is on no floor of FLOORS: place it")


def imports(name, path, known):
    """The clnn modules that module ``name`` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "clnn"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "clnn":
                continue
            for alias in node.names:  # "from . import sources" imports a module
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found - {name}


def import_graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_import_runs_down_the_floors():
    upward = []
    for name, targets in import_graph().items():
        for target in targets:
            if floor(target) > floor(name):
                upward.append(f"{name} ({FLOORS[floor(name)][0]}) imports {target} ({FLOORS[floor(target)][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = import_graph()
    state, cycles = {}, []

    def visit(name, stack):
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_deferred_and_relative_imports(tmp_path):
    """The checks above would miss nothing they claim to catch."""
    path = tmp_path / "fake.py"
    path.write_text("from .. import sources\nfrom ..ops import Target\n"
                    "def later():\n    from ..session import InferenceSession\n")
    found = imports("clnn.runtime.fake", path, modules())
    assert found == {"clnn.sources", "clnn.ops", "clnn.session"}
    assert floor("clnn.session") > floor("clnn.runtime.fake")


def test_clnn_imports_without_opencl():
    """A CUDA-only board has no OpenCL loader: clnn must import and list
    what it finds (no device at all here, as the CUDA driver is absent)."""
    code = "import sys; sys.modules['pyopencl'] = None; import clnn; print(clnn.devices())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "opencl" not in done.stdout


def test_clnn_imports_no_heavy_optional_modules():
    """scipy (46 MB of every process) is imported only for the cost model's
    fit, and onnx (14 MB) to read or write a model: listing devices and
    building a model (whose fusion passes probe the activations' references,
    GELU's erf among them) import neither."""
    code = ("import sys, clnn; clnn.devices(); clnn.models.get('lenet5', batch=1); "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    assert not loaded & {"scipy", "onnx"}


def test_every_op_module_declares_its_kernels():
    """Each kernel source belongs to an op module's entry, and each entry's
    sources exist."""
    from clnn.sources import source_names
    declared = {s for entry in entries().values() for s in entry.sources}
    assert declared == set(source_names())


def _layers(rng):
    return [Conv2d("conv", "x", rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4), pads=1),
            ScaleShift("bn", "conv", rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)),
            Binary("add", ("bn", "x4"), "Add"),
            Activation("relu", "add", "relu")]


def test_two_models_from_one_layer_list():
    rng = np.random.default_rng(0)
    layers = _layers(rng)
    before = [(layer.name, layer.inputs, {k: v.copy() for k, v in layer.weights().items()}, layer.activation)
              for layer in layers]
    first = clnn.Model({"x": (1, 3, 5, 5), "x4": (1, 4, 5, 5)}, layers, ["relu"])
    second = clnn.Model({"x": (2, 3, 7, 7), "x4": (2, 4, 7, 7)}, layers, ["relu"])
    assert len(first.layers) == len(second.layers) == 1  # all fused into the convolution
    after = [(layer.name, layer.inputs, layer.weights(), layer.activation) for layer in layers]
    for (name, inputs, weights, act), (name2, inputs2, weights2, act2) in zip(before, after):
        assert (name, inputs, act) == (name2, inputs2, act2)
        assert weights.keys() == weights2.keys()
        assert all(np.array_equal(weights[k], weights2[k]) for k in weights)
    assert all(layer.out_shape is None for layer in layers)  # never bound
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    r = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
    unfused = clnn.Model({"x": (2, 3, 7, 7), "x4": (2, 4, 7, 7)}, layers, ["relu"], fuse=False)
    np.testing.assert_allclose(second.reference({"x": x, "x4": r})[0], unfused.reference({"x": x, "x4": r})[0],
                               rtol=1e-5, atol=1e-5)
