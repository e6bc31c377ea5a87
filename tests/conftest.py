"""Test devices come from CLNN_DEVICES (tox sets it per environment).

CLNN_TEST_MIN_DEVICES makes an environment that must have several devices
(CI's two PoCL devices) fail loudly instead of quietly testing less.
"""

import os
import zlib

import numpy as np
import pytest

import clnn


def _selected():
    return clnn.select(None)


def pytest_report_header(config):
    return "clnn devices: " + "; ".join(str(d) for d in _selected())


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        found = _selected()
        metafunc.parametrize("device", found, ids=[d.id for d in found])


@pytest.fixture(scope="session")
def devices():
    found = _selected()
    wanted = int(os.environ.get("CLNN_TEST_MIN_DEVICES", "1"))
    assert len(found) >= wanted, f"this environment must offer {wanted} devices, found {found}"
    return found


@pytest.fixture(scope="session")
def pair(devices):
    """Two devices to split work between (the same one twice where only one
    exists, which still runs every slice and copy path)."""
    return (devices[0], devices[1] if len(devices) > 1 else devices[0])


@pytest.fixture(autouse=True)
def oclgrind_clean():
    """Under tox -e oclgrind, any invalid or uninitialised access that
    Oclgrind logs during a test fails that test."""
    log = os.environ.get("OCLGRIND_LOG")
    if log and os.path.exists(log):
        open(log, "w").close()
    yield
    if log and os.path.exists(log):
        with open(log) as f:
            report = f.read()
        open(log, "w").close()
        assert not report.strip(), "Oclgrind reported:\n" + report[:4000]


@pytest.fixture
def rng(request):
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)
