"""The kernels ship inside the wheel, and setup.cfg lists every subpackage."""

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return set(config["options"]["packages"].split())


def test_setup_cfg_lists_every_subpackage():
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "clnn").rglob("__init__.py")}
    assert found | {"clnn.kernels"} == _listed_packages()


def test_wheel_carries_the_kernel_sources(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True)
    (wheel,) = tmp_path.glob("clnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for source in (ROOT / "kernels").iterdir():
        assert f"clnn/kernels/{source.name}" in names
    assert any(n.endswith("entry_points.txt") for n in names)
