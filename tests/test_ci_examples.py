"""The CI examples users copy (``examples/ci/``) keep working: they run here against a real model.

The pytest example runs on the shipped trained SiLIF (``examples/trained/``): an artifact made from it,
a golden on 8 test samples, and its 480-utterance test split. It must pass on those and fail on a
modified artifact or on an artifact that really loses accuracy (4-bit weights). The workflow's command lines must parse with the
current CLI, and its environment variables must be the ones the pytest example reads.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import REPO  # noqa: E402
from test_verify import write_model_artifact  # noqa: E402

from silif_deploy import load_model  # noqa: E402
from silif_deploy.deploy.cli import build_parser  # noqa: E402
from silif_deploy.deploy.engines import model_name  # noqa: E402
from silif_deploy.deploy.verification import write_golden  # noqa: E402
from silif_deploy.hw_models.profile import PROFILE_DIR  # noqa: E402

CI = REPO / "examples" / "ci"
TRAINED = REPO / "examples" / "trained"
CHECKPOINT, TEST_SPLIT = TRAINED / "synth_digits_silif_2x128.pt", TRAINED / "synth_digits_test.npz"
# the CLI of the environment running these tests (the example's default, "silif-deploy", needs it on PATH)
CLI = str(Path(sys.executable).parent / "silif-deploy")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ci")
    artifact = write_model_artifact(load_model(CHECKPOINT), d / "model.loihi2.h5")
    with np.load(TEST_SPLIT) as z:
        x, labels = z["x"], z["labels"]
    write_golden(artifact, x[:8], d / "golden.npz")
    np.savez(d / "small_test.npz", x=x[:32], labels=labels[:32])
    return {"SILIF_ARTIFACT": artifact, "SILIF_GOLDEN": d / "golden.npz", "SILIF_MODEL": CHECKPOINT,
            "SILIF_TEST_DATA": TEST_SPLIT, "SILIF_MAX_ACCURACY_DROP": "1.0", "SILIF_DEPLOY": CLI, "dir": d}


def load_example(monkeypatch, env: dict):
    """Import examples/ci/test_deployment.py afresh under ``env`` (it reads its paths at import)."""
    for key, value in env.items():
        if key.startswith("SILIF_"):
            monkeypatch.setenv(key, str(value))
    spec = importlib.util.spec_from_file_location("ci_test_deployment", CI / "test_deployment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_passes_on_the_shipped_model(files, monkeypatch):
    """The project's fidelity target (1 pp) as the budget; the shipped SiLIF gains 0.21 pp in fixed point."""
    example = load_example(monkeypatch, files)
    assert example.ARTIFACT == files["SILIF_ARTIFACT"] and example.MAX_ACCURACY_DROP == 1.0
    example.test_artifact_reproduces_golden_bit_exactly()
    example.test_fixed_point_accuracy_within_budget()


def test_example_fails_on_a_modified_artifact(files, monkeypatch):
    modified = files["dir"] / "modified.loihi2.h5"
    shutil.copy(files["SILIF_ARTIFACT"], modified)
    with h5py.File(modified, "r+") as f:
        f["layers/0"].attrs["threshold"] = 1 << 30  # layer 0 never spikes
    example = load_example(monkeypatch, {**files, "SILIF_ARTIFACT": modified})
    with pytest.raises(AssertionError, match=r"first difference in spikes_0: .* expected 1, got 0; mismatches"):
        example.test_artifact_reproduces_golden_bit_exactly()


def test_example_fails_when_fixed_point_loses_more_than_the_budget(files, monkeypatch):
    """Loihi 2 with 4-bit instead of 8-bit weights: the shipped SiLIF's fixed point then misclassifies
    a sixth of the 32 samples, far beyond the 1 pp budget that the 8-bit artifact meets, so verify exits 1."""
    profile, n = re.subn(r"^bits = 8$", "bits = 4", (PROFILE_DIR / "loihi2.toml").read_text(), count=1, flags=re.M)
    assert n == 1 and profile.index("[weights]") < profile.index("bits = 4") < profile.index("[state]")
    (files["dir"] / "w4.toml").write_text(profile)
    coarse = write_model_artifact(load_model(CHECKPOINT), files["dir"] / "w4.loihi2.h5", str(files["dir"] / "w4.toml"))
    example = load_example(monkeypatch, {**files, "SILIF_MODEL": coarse,
                                         "SILIF_TEST_DATA": files["dir"] / "small_test.npz"})
    assert example.MAX_ACCURACY_DROP == 1.0
    with pytest.raises(AssertionError, match=r"FAILED: float accuracy .* drop [1-9]\d\.\d\d pp \(budget 1\.00 pp\) on 32 samples"):
        example.test_fixed_point_accuracy_within_budget()


def workflow_commands() -> list[list[str]]:
    text = (CI / "github-actions.yml").read_text()
    return [shlex.split(line) for line in re.findall(r"^[\s#]*(?:run: )?silif-deploy (.+)$", text, re.M)]


def test_workflow_commands_parse_with_the_current_cli():
    commands = workflow_commands()
    assert [c[0] for c in commands] == ["export", "golden", "export", "verify", "verify"]
    parser = build_parser()
    for command in commands:
        parser.parse_args(command)  # an unknown option or command exits (SystemExit) and fails the test
    export = parser.parse_args(commands[2])
    artifact = Path(export.outdir) / f"{model_name(Path(export.model))}.loihi2.h5"
    assert [parser.parse_args(c).model for c in commands[3:]] == [str(artifact), export.model]
    assert parser.parse_args(commands[1]).artifact == str(artifact)


def test_workflow_sets_the_variables_the_pytest_example_reads():
    workflow = (CI / "github-actions.yml").read_text()
    example = (CI / "test_deployment.py").read_text()
    read = set(re.findall(r'os\.environ\.get\("(SILIF_\w+)"', example))
    assert set(re.findall(r"^\s+(SILIF_\w+):", workflow, re.M)) == read - {"SILIF_DEPLOY"}
    assert "tests/test_deployment.py" in workflow
