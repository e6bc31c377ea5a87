"""Kernel programs: built once per context and options, kernels reused,
build failures reported with the compiler's log."""

import pytest

import clnn
from clnn import sources
from clnn.runtime import contexts_for


def test_kernel_objects_are_built_once_and_reused(devices):
    (ctx,) = contexts_for(devices[:1])
    first = ctx.kernel("eltwise", "clnn_eltwise_box")
    assert ctx.kernel("eltwise", "clnn_eltwise_box") is first
    other = ctx.kernel("eltwise", "clnn_eltwise_box", ("-DCLNN_UNUSED=1",))
    assert other is not first
    assert contexts_for(devices[:1]) == [ctx]  # contexts are shared too


def test_build_failure_carries_the_compiler_log(devices, monkeypatch):
    (ctx,) = contexts_for(devices[:1])
    broken = "__kernel void clnn_broken(__global float *x) { x[0] = undeclared_name; }"
    monkeypatch.setattr(sources, "load_source", lambda name: broken)
    monkeypatch.setattr("clnn.runtime.opencl.load_source", lambda name: broken)
    with pytest.raises(clnn.DeviceError) as info:
        ctx.kernel("broken_for_test", "clnn_broken")
    assert "undeclared_name" in str(info.value)
    assert "broken_for_test" in str(info.value)


def test_every_source_builds(devices):
    for ctx in contexts_for(devices):
        for name in sources.source_names():
            ctx.program(name, ())


def test_includes_are_inlined_once():
    text = sources.load_source("eltwise")
    assert "#include" not in text
    assert text.count("float clnn_act(") == 1
