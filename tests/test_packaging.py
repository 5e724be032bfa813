"""The wheel: three subpackages, the console script, core dependencies without torch or lava, and
``silif_deploy.hw_models`` importable without importing torch.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation --no-index``) from a copy of
the source tree in a temporary folder, so the build never writes ``build/`` or ``*.egg-info`` into
the checkout.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE_DIRS = {  # wheel path -> source folder
    "silif_deploy": REPO / "src" / "silif_deploy",
    "silif_deploy/deploy": REPO / "deploy",
    "silif_deploy/converters": REPO / "converters",
    "silif_deploy/hw_models": REPO / "hw_models",
}
ROOT_FILES = re.compile(r"^(pyproject\.toml|setup\.(py|cfg)|MANIFEST\.in|README.*|LICEN[CS]E.*)$")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed in this environment (needed for an offline wheel build)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src-tree"
    src.mkdir()
    for entry in REPO.iterdir():
        if entry.is_file() and ROOT_FILES.match(entry.name):
            shutil.copy2(entry, src / entry.name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("src", "deploy", "converters", "hw_models"):
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    out = tmp / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(out.glob("silif_deploy-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def _dist_info_file(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        (member,) = [n for n in z.namelist() if n.endswith(f".dist-info/{name}")]
        return z.read(member).decode()


@pytest.mark.timeout(60)
def test_wheel_contains_the_three_subpackages(wheel_names):
    for required in (
        "silif_deploy/__init__.py",
        "silif_deploy/errors.py",
        "silif_deploy/deploy/__init__.py",
        "silif_deploy/deploy/cli.py",
        "silif_deploy/converters/__init__.py",
        "silif_deploy/converters/checkpoint.py",
        "silif_deploy/converters/torch_neurons.py",
        "silif_deploy/hw_models/__init__.py",
        "silif_deploy/hw_models/run_result.py",
    ):
        assert required in wheel_names, required
    assert any(n.startswith("silif_deploy/hw_models/profiles/") and n.endswith(".toml") for n in wheel_names)
    # Every module of the source folders ships (no subfolder forgotten in the package list).
    for prefix, folder in PACKAGE_DIRS.items():
        for py in folder.rglob("*.py"):
            if "__pycache__" in py.parts:
                continue
            assert f"{prefix}/{py.relative_to(folder).as_posix()}" in wheel_names, py
    # Nothing else at the top level: no tests, no stray top-level 'deploy' package.
    tops = {n.split("/")[0] for n in wheel_names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"silif_deploy"}


def test_wheel_console_script(wheel):
    entry_points = _dist_info_file(wheel, "entry_points.txt")
    assert "[console_scripts]" in entry_points
    assert re.search(r"^silif-deploy\s*=\s*silif_deploy\.deploy\.cli:program\s*$", entry_points, re.M), entry_points


def test_core_dependencies_exclude_torch_and_lava(wheel):
    metadata = _dist_info_file(wheel, "METADATA")
    assert re.search(r"^Name: silif-deploy$", metadata, re.M)
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert requires
    for req in requires:
        name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0).lower()
        if name in ("torch", "lava-nc", "lava", "nirtorch", "snntorch"):
            assert "extra ==" in req, f"core dependency on {req}"
    torch_reqs = [r for r in requires if r.startswith("torch") and 'extra == "torch"' in r]
    assert torch_reqs, "no torch extra"
    assert re.search(r"^Requires-Python: .*(<3\.1[2-9]|<4)", metadata, re.M)


_NO_TORCH_SCRIPT = r"""
import pkgutil, sys, importlib
import silif_deploy
assert silif_deploy.__file__.startswith(sys.argv[1]), silif_deploy.__file__
import silif_deploy.hw_models as hw
names = [m.name for m in pkgutil.walk_packages(hw.__path__, prefix="silif_deploy.hw_models.")]
assert len(names) >= 3, names
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not bad, f"importing silif_deploy.hw_models imported {bad[:5]}"
assert "silif_deploy.hw_models.run_result" in sys.modules
print("imported", len(names), "modules")
"""


def test_hw_models_import_without_torch(wheel, tmp_path):
    """Walk silif_deploy.hw_models from the wheel in a fresh interpreter; torch must stay unimported.

    The interpreter runs with ``-S`` (no site hooks, so the editable install's finder cannot shadow
    the wheel) and sees the unpacked wheel first, then this environment's site-packages, torch
    included: the test checks that nothing imports it, not that it is missing.
    """
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(unpacked)
    paths = [str(unpacked), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _NO_TORCH_SCRIPT, str(unpacked)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "imported" in proc.stdout


def test_installed_console_script_runs():
    """The environment's ``silif-deploy`` script (from the editable install) answers --version."""
    script = Path(sys.executable).with_name("silif-deploy")
    if not script.exists():
        pytest.skip("silif-deploy is not installed as a console script in this environment")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("silif-deploy ")
