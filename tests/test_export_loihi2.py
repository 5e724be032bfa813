"""``export --target loihi2``, ``simulate`` on the artifact, ``inspect``: files, report, errors, determinism."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from silif_deploy.deploy.cli import main
from silif_deploy.deploy.pipeline import SyntheticProbe

from conftest import HAS_TORCH, checkpoint_path, golden_path

pytestmark = pytest.mark.skipif(not HAS_TORCH, reason="export needs PyTorch")

NAME = "ssc_silif_2x512"
EXPORT_FILES = {f"{NAME}.nir", f"{NAME}.loihi2.h5", "report.json", "report.md", "report.png"}


def _export(outdir, *extra):
    assert main(["export", str(checkpoint_path("silif")), "--target", "loihi2", "-o", str(outdir), *extra]) == 0
    return outdir / f"{NAME}.loihi2.h5", json.loads((outdir / "report.json").read_text())


@pytest.fixture(scope="module")
def default_export(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("loihi2"))


@pytest.fixture(scope="module")
def wide_export(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("wide"), "--profile", "loihi2-wide")


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """The golden input as an .npz input file."""
    path = tmp_path_factory.mktemp("inputs") / "golden.npz"
    np.savez(path, input=np.load(golden_path("silif"))["input"])
    return path


def _simulate(capsys, *args):
    code = main(["simulate", *map(str, args)])
    return code, capsys.readouterr()


def test_export_writes_five_files_and_a_versioned_report(default_export):
    artifact, report = default_export
    assert {p.name for p in artifact.parent.iterdir()} == EXPORT_FILES
    assert (report["schema"], report["schema_version"], report["engine"]) == ("silif-deploy/report", 1, "fixed")
    assert report["input"]["kind"] == "synthetic-probe" and report["input"]["probe"]["seed"] == 0
    assert 0.05 < report["input"]["activity"] < 0.07
    assert [layer["name"] for layer in report["layers"]] == ["L0", "L1", "readout"]
    for key in ("sop", "effective_sop", "neuron_updates", "spikes", "presynaptic_events", "neurons", "weights",
                "weight_bits", "state_bits", "steps", "buffers", "sparsity", "overflow_events"):
        assert all(key in layer for layer in report["layers"]), key
    assert report["totals"]["buffers"] == 2048 and report["totals"]["parameters"] == 359_017
    assert report["profile"]["name"] == "loihi2" and report["profile"]["weight_bits"] == 8
    prov = report["provenance"]["artifact_provenance"]
    assert prov["source_checkpoint"] == f"{NAME}.pth" and len(prov["nir_sha256"]) == 64
    md = (artifact.parent / "report.md").read_text()
    assert "| L0 | silif | 512 |" in md and "β rounded to exactly 1" in md
    assert (artifact.parent / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_beta_near_one_becomes_perfect_integrators_unless_coefficients_are_wide(default_export, wide_export):
    """neurons.md §16: β > 1 − 2^-13 for 180 (L0) and 273 (L1) neurons; 12-bit β rounds them to 1."""
    default = default_export[1]["quantization"]["layers"]
    wide = wide_export[1]["quantization"]["layers"]
    assert [d["beta_one_perfect_integrator"] for d in default[:2]] == [180, 273]
    # 24-bit coefficients keep every β below 1 that float32 has below 1: only the exact ones remain
    assert [d["beta_one_perfect_integrator"] for d in wide[:2]] == [d["beta_one_in_float"] for d in wide[:2]]
    assert all(d["beta_one_in_float"] < 0.1 * d["neurons"] for d in wide[:2])
    assert any("180 of 512 β rounded to exactly 1" in w for w in default_export[1]["quantization"]["warnings"])


def test_wide_profile_is_closer_to_float(default_export, wide_export):
    default = default_export[1]["fidelity"]
    wide = wide_export[1]["fidelity"]
    for d, w in zip(default["layers"], wide["layers"]):
        assert w["spike_agreement"] > d["spike_agreement"]
    assert wide["layers"][0]["spike_agreement"] > 0.99
    assert default["prediction_agreement"] >= 0.9


@pytest.mark.parametrize("model", ["silif", "cadlif", "csilif"])
def test_wide_profile_agrees_above_99_percent_in_every_layer(model, tmp_path, capsys):
    """The issue's target: `loihi2-wide`, calibrated on the golden inputs, keeps more than 99 % of the
    float model's spikes in every layer, on the golden inputs and on random SSC-like input (another
    probe seed than the reports' default: input the calibration never saw)."""
    golden_input, probe = tmp_path / "golden.npz", tmp_path / "probe.npz"
    np.savez(golden_input, input=np.load(golden_path(model))["input"])
    np.savez(probe, input=SyntheticProbe(samples=16, seed=1).generate(140))
    outdir = tmp_path / "wide"
    assert main(["export", str(checkpoint_path(model)), "--target", "loihi2", "-o", str(outdir), "--model-type", model,
                 "--profile", "loihi2-wide", "--calibrate", str(golden_input)]) == 0
    report = json.loads((outdir / "report.json").read_text())
    # 32-bit states would allow scales whose weights leave the format: the scale must yield to them
    quantization = report["quantization"]["layers"]  # the hidden layers and the readout
    assert [d["name"] for d in quantization] == ["L0", "L1", "readout"]
    assert all(d["weights_clipped"] == 0 and d["biases_out_of_range"] == 0 for d in quantization)
    path = tmp_path / "probe_report.json"
    artifact = outdir / f"ssc_{model}_2x512.loihi2.h5"
    assert _simulate(capsys, artifact, "--input", probe, "--out", tmp_path / "o.npz", "--report", path)[0] == 0
    on_probe = json.loads(path.read_text())["fidelity"]
    assert on_probe["samples"] == 16 and report["fidelity"]["samples"] == 4
    for fidelity in (report["fidelity"], on_probe):
        assert [layer["name"] for layer in fidelity["layers"]] == ["L0", "L1"]
        assert min(layer["spike_agreement"] for layer in fidelity["layers"]) > 0.99, fidelity["layers"]
        assert fidelity["prediction_agreement"] == 1.0


def test_simulate_artifact_fixed_by_default_with_integer_states(default_export, golden, tmp_path, capsys):
    artifact, _ = default_export
    out = tmp_path / "out.npz"
    code, _ = _simulate(capsys, artifact, "--input", golden, "--out", out, "--record-states",
                        "--record", "spikes,readout")
    assert code == 0
    with np.load(out) as f:
        assert {"scores", "prediction", "readout_u", "spikes_0", "spikes_1"} <= set(f.files)
        assert f["spikes_0"].shape == (4, 300, 512) and f["scores"].shape == (4, 35)
        for key in ("state_u_0", "state_w_0", "state_u_1", "state_w_1", "state_v_readout"):
            assert f[key].dtype == np.int64 and f[key].shape[:2] == (4, 300), key
        assert np.abs(f["state_u_0"]).max() > 1000  # integers on the threshold scale, not floats


def test_float_engine_on_the_artifact_is_the_checkpoint_float_run(default_export, golden, tmp_path, capsys):
    artifact, _ = default_export
    runs = {}
    for name, model in (("artifact", artifact), ("checkpoint", checkpoint_path("silif"))):
        out = tmp_path / f"{name}.npz"
        assert _simulate(capsys, model, "--input", golden, "--out", out, "--engine", "float", "--record", "spikes")[0] == 0
        with np.load(out) as f:
            runs[name] = {k: f[k] for k in f.files}
    assert runs["artifact"].keys() == runs["checkpoint"].keys()
    for key, value in runs["checkpoint"].items():
        np.testing.assert_array_equal(runs["artifact"][key], value, err_msg=key)
    golden_file = np.load(golden_path("silif"))
    np.testing.assert_array_equal(runs["artifact"]["spikes_0"], np.unpackbits(golden_file["spikes_l0"], axis=-1).astype(bool))


def test_simulate_report_states_fidelity_on_the_golden_input(default_export, golden, tmp_path, capsys):
    artifact, _ = default_export
    path = tmp_path / "sim_report.json"
    assert _simulate(capsys, artifact, "--input", golden, "--out", tmp_path / "o.npz", "--report", path)[0] == 0
    report = json.loads(path.read_text())
    fid = report["fidelity"]
    assert report["engine"] == "fixed" and report["input"]["kind"] == "file" and fid["samples"] == 4
    assert [layer["name"] for layer in fid["layers"]] == ["L0", "L1"]
    assert all(0.9 < layer["spike_agreement"] <= 1.0 for layer in fid["layers"])
    assert fid["prediction_agreement"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert report["totals"]["steps"] == 303 and report["totals"]["input_steps"] == 300


def test_simulate_report_of_the_float_checkpoint_has_the_reference_sop(golden, tmp_path, capsys):
    path = tmp_path / "float_report.json"
    code, _ = _simulate(capsys, checkpoint_path("silif"), "--input", golden, "--out", tmp_path / "o.npz", "--report", path)
    assert code == 0
    report = json.loads(path.read_text())
    assert report["engine"] == "float" and report["fidelity"] is None and report["profile"] is None
    assert report["totals"]["sop"] == 8_899_238.75  # neurons.md §15.4


def test_export_with_calibration_reports_on_the_calibration_input(golden, tmp_path, capsys):
    artifact, report = _export(tmp_path, "--calibrate", str(golden))
    assert report["input"]["kind"] == "file" and report["input"]["samples"] == 4
    assert report["quantization"]["calibrated"] is True
    assert report["provenance"]["artifact_provenance"]["calibration_sha256"] == report["input"]["sha256"]
    fid = report["fidelity"]
    assert len(fid["layers"]) == 2 and "prediction_agreement" in fid
    printed = capsys.readouterr().out
    assert "L0" in printed and "SOP/sample" in printed and "spike agreement" in printed


def test_inspect_prints_layers_profile_provenance_and_warnings(default_export, capsys):
    artifact, _ = default_export
    assert main(["inspect", str(artifact)]) == 0
    out = capsys.readouterr().out
    assert "profile: loihi2" in out and "source_sha256" in out and "nir_sha256" in out
    assert "L0  " in out and "readout" in out and "silif" in out
    assert "180 of 512 β rounded to exactly 1" in out


# ---------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit 2, nothing written.


def _newer_version(src, dst):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["format_version"] = 99


def _truncated(src, dst):
    dst.write_bytes(src.read_bytes()[:4096])


@pytest.mark.parametrize("damage", [_newer_version, _truncated], ids=["newer-version", "corrupted"])
def test_bad_artifact_is_refused(default_export, golden, tmp_path, capsys, damage):
    bad = tmp_path / "bad.loihi2.h5"
    damage(default_export[0], bad)
    out = tmp_path / "out.npz"
    for argv in (["simulate", str(bad), "--input", str(golden), "--out", str(out)], ["inspect", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(bad) in err
    assert not out.exists()


def _wrong_channels(x):
    return x[:, :, :100]


def _negative(x):
    y = x.copy()
    y[0, 0, 0] = -1
    return y


def _nan(x):
    y = x.astype(np.float32)
    y[0, 5, 3] = np.nan
    return y


@pytest.mark.parametrize("corrupt", [_wrong_channels, _negative, _nan], ids=["channels", "negative", "nan"])
def test_bad_input_is_refused(default_export, tmp_path, capsys, corrupt):
    bad = tmp_path / "bad.npy"
    np.save(bad, corrupt(np.load(golden_path("silif"))["input"]))
    out = tmp_path / "out.npz"
    report = tmp_path / "r.json"
    assert main(["simulate", str(default_export[0]), "--input", str(bad), "--out", str(out), "--report", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err
    assert not out.exists() and not report.exists()
    if corrupt is not _negative:  # negative values are legal real-valued calibration data
        outdir = tmp_path / "export"
        assert main(["export", str(checkpoint_path("silif")), "--target", "loihi2", "-o", str(outdir),
                     "--calibrate", str(bad)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not outdir.exists()


def test_unknown_profile_is_refused_before_writing(tmp_path, capsys):
    outdir = tmp_path / "x"
    assert main(["export", str(checkpoint_path("silif")), "--target", "loihi2", "-o", str(outdir), "--profile", "nope"]) == 2
    assert "unknown hardware profile 'nope'" in capsys.readouterr().err
    assert not outdir.exists()


# ---------------------------------------------------------------------------------------------
# Determinism.


def test_same_artifact_and_input_give_identical_outputs(default_export, golden, tmp_path, capsys):
    artifact, _ = default_export
    x = np.load(golden)["input"]
    order = np.array([2, 0, 3, 1])
    shuffled = tmp_path / "shuffled.npy"
    np.save(shuffled, x[order])
    runs = []
    for i, (inp, batch) in enumerate([(golden, 4), (golden, 4), (golden, 1), (shuffled, 3)]):
        out = tmp_path / f"run{i}.npz"
        assert _simulate(capsys, artifact, "--input", inp, "--out", out, "--batch-size", batch, "--record-states",
                         "--record", "spikes,readout")[0] == 0
        with np.load(out) as f:
            arrays = {k: f[k] for k in f.files}
        if inp is shuffled:
            arrays = {k: v[np.argsort(order)] for k, v in arrays.items()}
        runs.append(arrays)
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for key in runs[0]:
            assert other[key].dtype == runs[0][key].dtype
            assert other[key].tobytes() == runs[0][key].tobytes(), key


def test_export_failing_part_way_leaves_nothing(tmp_path, capsys, monkeypatch):
    from silif_deploy.deploy import reporting
    from silif_deploy.errors import SilifDeployError

    def fail(*args, **kwargs):
        raise SilifDeployError("plot failed")

    monkeypatch.setattr(reporting, "write_plot", fail)
    outdir = tmp_path / "partial"
    assert main(["export", str(checkpoint_path("silif")), "--target", "loihi2", "-o", str(outdir)]) == 2
    assert "plot failed" in capsys.readouterr().err
    assert not outdir.exists()
