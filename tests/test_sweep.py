"""``sweep`` and the Dask sharding under it.

What each test proves:

* no Dask, a 1-worker and a 2-worker ``LocalCluster`` give byte-identical rows: the task split,
  where tasks run and the order they finish in cannot change a result (same shards, tallies added
  in shard order, float kernels single-threaded);
* a worker process killed mid-run (SIGKILL, by its pid) is replaced, its lost tasks recomputed,
  and the rows are still the same bytes;
* the configuration equal to ``loihi2`` itself reproduces the fixed-point and float accuracies
  that ``examples/trained/README.md`` states for that model on the whole test file (measured there
  by ``verify --data``, one pass, no shards): the sweep's sharded tallies add up to the plain run;
* a width the profile format cannot hold is a row with its one-line reason, and a derived profile
  is the base profile with exactly the three swept fields (and its name) changed;
* :func:`map_shards` (the ``--scheduler`` helper for ``verify --data``) gives the predictions of the
  one-pass :func:`fixed_and_float_predictions`, with and without Dask;
* ``simulate``, ``report`` and ``verify --data`` with ``--scheduler`` (the shards run on the
  cluster, checked in its task stream) write the same arrays, report numbers and verdict as the
  same command in this process: the in-process run is the independent path (its own reader and
  batch loop); what they share is the engine, the writer and the tallies, which these tests do not
  prove, only that sharding by sample range changes nothing.

The synthetic-digit models (140 → 128 → 128 → 20) on a few dozen samples keep it to seconds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
distributed = pytest.importorskip("distributed")

from silif_deploy.deploy import sharding, sweep, sweep_report  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAINED = REPO / "examples/trained"
SILIF = str(TRAINED / "synth_digits_silif_2x128.pt")
DATA = str(TRAINED / "synth_digits_test.npz")
BASE = load_profile("loihi2")
CONFIGS = sweep.configurations(BASE, [4, 8, 20], [12], [24])  # 20 weight bits: not a legal profile
SAMPLES, SHARD = 96, 16


def run(client, **kwargs) -> sweep.SweepResult:
    return sweep.run_sweep([SILIF], DATA, CONFIGS, BASE, client, "loihi2", shard_size=SHARD,
                           max_samples=SAMPLES, **kwargs)


@pytest.fixture(scope="module")
def no_dask() -> sweep.SweepResult:
    return run(None)


@pytest.fixture(scope="module")
def two_workers():
    with sharding.dask_client(workers=2) as client:
        yield client


def test_one_worker_two_workers_and_no_dask_are_byte_identical(no_dask, two_workers):
    with sharding.dask_client(workers=1) as client:
        one = run(client)
    two = run(two_workers)
    assert one.run["workers"] == 1 and two.run["workers"] == 2 and not no_dask.run["dask"]
    reference = sweep_report.numeric_json(no_dask.rows)
    assert sweep_report.numeric_json(one.rows) == reference
    assert sweep_report.numeric_json(two.rows) == reference
    assert set(two.run["task_seconds"]) == {"quantize", "float", "fixed", "row"}


def test_a_killed_worker_is_replaced_and_results_stay_identical(no_dask, two_workers):
    client = two_workers
    pids_before = client.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for address, keys in client.processing().items():
                if any(str(k).startswith(("float/", "fixed/")) for k in keys) and address in pids_before:
                    os.kill(pids_before[address], signal.SIGKILL)  # a worker process this test started
                    killed.append(pids_before[address])
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    result = run(client)
    killer.join()
    assert killed, "no worker was busy with a shard task while the sweep ran"
    client.wait_for_workers(2, timeout=60)
    assert killed[0] not in client.run(os.getpid).values()  # the nanny started a new process
    assert sweep_report.numeric_json(result.rows) == sweep_report.numeric_json(no_dask.rows)


def test_loihi2_widths_reproduce_the_stated_accuracies_on_the_whole_file():
    # examples/trained/README.md: SiLIF float 94.17 %, fixed point (loihi2) 94.38 % on the 480 test samples
    config = sweep.configurations(BASE, None, None, None)
    assert config == [sweep.BitWidths(8, 12, 24)]
    (row,) = sweep.run_sweep([SILIF], DATA, config, BASE, None, "loihi2", shard_size=100).rows
    assert row["samples"] == 480
    assert round(100 * row["accuracy_float"], 2) == 94.17
    assert round(100 * row["accuracy_fixed"], 2) == 94.38
    assert row["accuracy_drop_pp"] == pytest.approx(100 * (452 - 453) / 480)


def test_unbuildable_width_is_a_row_with_its_reason(no_dask):
    rows = {r["weight_bits"]: r for r in no_dask.rows}
    assert rows[20]["status"] == "unbuildable"
    assert "weights.bits must be 2..16" in rows[20]["reason"] and "\n" not in rows[20]["reason"]
    assert rows[4]["status"] == rows[8]["status"] == "ok"
    assert rows[4]["accuracy_fixed"] < rows[8]["accuracy_fixed"]  # 4-bit weights lose accuracy
    assert set(rows[8]["spike_agreement"]) == {"L0", "L1"}
    assert rows[8]["samples"] == SAMPLES and rows[8]["energy_uj"] > 0
    assert set(no_dask.profiles) == {"loihi2-w4-c12-s24", "loihi2-w8-c12-s24"}


def test_data_from_a_url_gives_the_same_rows(no_dask):
    from_url = sweep.run_sweep([SILIF], Path(DATA).as_uri(), CONFIGS, BASE, None, "loihi2", shard_size=SHARD,
                               max_samples=SAMPLES)
    assert sweep_report.numeric_json(from_url.rows) == sweep_report.numeric_json(no_dask.rows)
    assert from_url.data["path"].startswith("file://")


def test_derived_profile_changes_the_swept_fields_and_what_states_bound():
    text, derived = sweep.derived_profile(BASE, sweep.BitWidths(6, 16, 16), "0" * 64)
    # 16-bit states hold thresholds of at most 16 bits: mantissa 16 − exponent 6 = 10 (the base has 17)
    expected = {**BASE.to_dict(), "name": "loihi2-w6-c16-s16", "weight_bits": 6, "coefficient_bits": 16, "state_bits": 16,
                "threshold_mantissa_bits": 10}
    assert derived.to_dict() == expected
    assert text.startswith("# Derived by silif-deploy sweep from hardware profile 'loihi2'")
    with pytest.raises(SilifDeployError, match="state.bits must be 8..32"):
        sweep.derived_profile(BASE, sweep.BitWidths(8, 12, 40), "0" * 64)


def test_cli_writes_table_plots_and_profiles_and_an_existing_scheduler_agrees(two_workers, tmp_path, monkeypatch):
    argv = ["sweep", SILIF, "--data", DATA, "--weight-bits", "4,8", "--coefficient-bits", "12", "--state-bits", "24",
            "--max-samples", "32", "--shard-size", "16"]
    here, remote = tmp_path / "here", tmp_path / "remote"
    assert main([*argv, "--workers", "0", "-o", str(here)]) == 0
    for name in sweep_report.OUT_FILES:
        assert (here / name).stat().st_size > 0
    assert (here / "accuracy_energy.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((here / "sweep.json").read_text())
    assert saved["provenance"]["hardware_profile"] == "loihi2" and saved["data"]["samples"] == 32
    assert load_profile(str(here / "profiles/loihi2-w4-c12-s24.toml")).weight_bits == 4
    assert "| synth_digits_silif_2x128.pt | 4 | 12 | 24 |" in (here / "sweep.md").read_text()

    monkeypatch.setenv(sharding.SCHEDULER_ENV, two_workers.scheduler.address)  # as `export DASK_SCHEDULER_ADDRESS=...`
    assert main([*argv, "-o", str(remote)]) == 0
    sent = json.loads((remote / "sweep.json").read_text())
    assert sent["run"]["scheduler"] == two_workers.scheduler.address and sent["run"]["workers"] == 2
    assert sweep_report.numeric_json(sent["rows"]) == sweep_report.numeric_json(saved["rows"])


def test_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sharding, "CONNECT_TIMEOUT_S", 1)
    code = main(["sweep", SILIF, "--data", DATA, "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("silif-deploy sweep: error: cannot reach the Dask scheduler")


def test_bad_bit_list_is_a_usage_error(tmp_path, capsys):
    assert main(["sweep", SILIF, "--data", DATA, "--weight-bits", "4,x", "-o", str(tmp_path)]) == 2
    assert "argument --weight-bits: '4,x' is not a comma-separated list of bit widths" in capsys.readouterr().err


def test_map_shards_matches_the_one_pass_predictions(two_workers, tmp_path):
    from silif_deploy.converters.datasets import load_input
    from silif_deploy.deploy.accuracy_check import fixed_and_float_predictions

    data, small = load_input(DATA), tmp_path / "small.npz"
    np.savez(small, x=data.x[:SAMPLES], labels=data.labels[:SAMPLES])
    labels, float_pred, fixed_pred = fixed_and_float_predictions(SILIF, small)
    for client in (None, two_workers):
        parts = sharding.map_shards(client, sharding.predictions_shard, small, SILIF, shard_size=40)
        assert len(parts) == 3  # 96 samples
        got = [np.concatenate(column) for column in zip(*parts)]
        for a, b in zip(got, (labels, float_pred, fixed_pred)):
            np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def artifact_and_data(tmp_path_factory):
    """The SiLIF model quantized under loihi2, carrying its float model, and 64 labelled samples."""
    from silif_deploy.converters.artifact import write_artifact
    from silif_deploy.converters.datasets import load_input
    from silif_deploy.deploy.engines import load_float_model
    from silif_deploy.deploy.pipeline import quantize_model

    folder = tmp_path_factory.mktemp("sharded")
    model = load_float_model(SILIF)
    network = quantize_model(model, BASE)
    network.float_model = {"config": model.config.to_dict(), "state_dict": {k: v.numpy() for k, v in model.state_dict().items()}}
    artifact = str(folder / "silif.loihi2.h5")
    write_artifact(network, artifact)
    data = load_input(DATA)
    small = folder / "small.npz"
    np.savez(small, x=data.x[:64], labels=data.labels[:64])
    return artifact, str(small)


def on_cluster(client, argv: list[str]) -> tuple[int, set[str]]:
    """``main(argv)`` and the kinds of the tasks the cluster ran meanwhile."""
    with distributed.get_task_stream(client) as stream:
        code = main(argv)
    return code, {str(t["key"]).split("/")[0] for t in stream.data}


def test_simulate_on_a_scheduler_writes_the_same_arrays(two_workers, artifact_and_data, tmp_path):
    import h5py

    artifact, data = artifact_and_data
    argv = ["simulate", artifact, "--input", data, "--record", "all", "--batch-size", "16"]
    assert main([*argv, "--out", str(tmp_path / "here.h5")]) == 0
    # shards of 24 samples, not a multiple of the batch: shard boundaries cannot change a sample's outputs
    code, kinds = on_cluster(two_workers, [*argv, "--out", str(tmp_path / "sharded.h5"), "--shard-size", "24",
                                           "--scheduler", two_workers.scheduler.address])
    assert code == 0 and "simulate_shard" in kinds
    with h5py.File(tmp_path / "here.h5") as here, h5py.File(tmp_path / "sharded.h5") as sharded:
        assert set(sharded) == set(here) and {"labels", "spikes_0", "state_v_readout", "readout_u", "overflow_events"} <= set(here)
        for name in here:
            np.testing.assert_array_equal(sharded[name][()], here[name][()], err_msg=name)
            assert sharded[name].dtype == here[name].dtype
        attrs = [{k: np.asarray(v).tolist() for k, v in f.attrs.items()} for f in (here, sharded)]
        provs = [json.loads(a.pop("provenance")) for a in attrs]
        assert attrs[0] == attrs[1] and json.loads(attrs[0]["summary"])["samples"] == 64  # summary, record, format
        for prov in provs:
            prov.pop("created_utc")
        assert provs[0] == provs[1]  # the same input and model hashes


@pytest.mark.parametrize("shard_size", ["32", "64"])
def test_report_on_a_scheduler_gives_the_same_numbers(two_workers, artifact_and_data, tmp_path, shard_size):
    artifact, data = artifact_and_data
    argv = ["report", artifact, "--input", data]
    assert main([*argv, "-o", str(tmp_path / "here")]) == 0
    code, kinds = on_cluster(two_workers, [*argv, "-o", str(tmp_path / "sharded"), "--shard-size", shard_size,
                                           "--scheduler", two_workers.scheduler.address])
    assert code == 0 and "evaluate_shard" in kinds
    here, sharded = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("here", "sharded"))
    for report in (here, sharded):
        report["provenance"].pop("created_utc")
    # 32 samples a shard is one evaluation batch: the float sums (readout error) are added in the
    # same order; at 64 they are grouped by shard, and equal here to the last digit
    assert here["fidelity"]["samples"] == 64 and here["totals"]["accuracy"] is not None
    assert json.dumps(sharded) == json.dumps(here)


def test_verify_data_on_a_scheduler_gives_the_same_verdict(two_workers, artifact_and_data, tmp_path, capsys):
    _, data = artifact_and_data
    # 4-bit weights really lose accuracy (the sweep's derived profile): a 1 pp budget fails, exit 1 both ways
    text, _ = sweep.derived_profile(BASE, sweep.BitWidths(4, BASE.coefficient_bits, BASE.state_bits), "0" * 64)
    (tmp_path / "w4.toml").write_text(text)
    argv = ["verify", SILIF, "--data", data, "--profile", str(tmp_path / "w4.toml"), "--max-accuracy-drop", "1"]
    assert main(argv) == 1
    here = capsys.readouterr().out
    code, kinds = on_cluster(two_workers, [*argv, "--shard-size", "20", "--scheduler", two_workers.scheduler.address])
    assert code == 1 and "predictions_shard" in kinds
    assert capsys.readouterr().out == here
    assert here.startswith("FAILED: float accuracy") and "on 64 samples" in here


@pytest.mark.parametrize("command", ["simulate", "report", "verify"])
def test_every_sharding_command_says_when_the_scheduler_is_unreachable(command, artifact_and_data, tmp_path, capsys,
                                                                        monkeypatch):
    artifact, data = artifact_and_data
    monkeypatch.setattr(sharding, "CONNECT_TIMEOUT_S", 1)
    argv = {"simulate": ["simulate", artifact, "--input", data, "--out", str(tmp_path / "o.h5")],
            "report": ["report", artifact, "--input", data, "-o", str(tmp_path / "r")],
            "verify": ["verify", SILIF, "--data", data]}[command]
    monkeypatch.setenv(sharding.SCHEDULER_ENV, "tcp://127.0.0.1:9")  # the variable alone sends the work there
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().startswith(f"silif-deploy {command}: error: cannot reach the Dask scheduler")
    assert list(tmp_path.iterdir()) == []
