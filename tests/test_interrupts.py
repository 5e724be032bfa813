"""Outputs appear whole or not at all: under SIGTERM and Ctrl-C (real processes, signalled while
they write), when an interrupt is swallowed by a library, when a multi-file output fails part-way,
and with output names near the file-name limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy.converters.artifact import write_artifact  # noqa: E402
from silif_deploy.converters.checkpoint import save_checkpoint  # noqa: E402
from silif_deploy.converters.files import atomic_output, interrupts_raise, staged_outputs  # noqa: E402
from silif_deploy.converters.float_params import float_network  # noqa: E402
from silif_deploy.converters.quantize import quantize  # noqa: E402
from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork  # noqa: E402
from silif_deploy.deploy.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, main  # noqa: E402
from silif_deploy.errors import SilifDeployError  # noqa: E402
from silif_deploy.hw_models.profile import load_profile  # noqa: E402

N_IN = 40


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("interrupts")
    torch.manual_seed(0)
    model = SpikingNetwork(NetworkConfig("silif", N_IN, [64, 64], 10, pdrop=0.0)).eval()
    save_checkpoint(model, d / "m.pt")
    network = quantize(float_network(model), load_profile())
    write_artifact(network, d / "m.loihi2.h5")
    # large enough that writing the compressed results takes a while (the signal lands mid-write)
    x = np.random.default_rng(0).poisson(0.3, (1500, 200, N_IN)).astype(np.int16)
    np.save(d / "x.npy", x)
    return d


def _signal_when(argv: list[str], ready, sig: int, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run the CLI; send ``sig`` as soon as ``ready()`` is true (polled every 2 ms)."""
    proc = subprocess.Popen([sys.executable, "-m", "silif_deploy.deploy.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    while proc.poll() is None and not ready():
        if time.monotonic() - start > timeout:
            proc.kill()
            pytest.fail("the writer never started")
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _parts(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, EXIT_TERMINATED), (signal.SIGINT, EXIT_INTERRUPTED)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_while_simulate_writes_leaves_nothing(files, tmp_path, sig, code):
    out = tmp_path / "out.npz"
    run = _signal_when(["simulate", str(files / "m.loihi2.h5"), "--input", str(files / "x.npy"), "--out", str(out)],
                       lambda: bool(_parts(tmp_path)), sig)
    assert run.returncode == code, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == [], "a half-written output or its temporary file was left behind"


def test_sigterm_during_export_leaves_no_file_of_the_set(files, tmp_path):
    outdir = tmp_path / "export"
    staged = lambda: outdir.is_dir() and any(p.suffix == ".nir" for p in outdir.rglob("*.nir"))  # noqa: E731
    run = _signal_when(["export", str(files / "m.pt"), "--target", "loihi2", "-o", str(outdir)], staged, signal.SIGTERM)
    assert run.returncode == EXIT_TERMINATED, run.stderr
    assert not outdir.exists(), f"export left {sorted(p.name for p in outdir.rglob('*'))}"


def test_interrupt_swallowed_while_a_file_closes_is_raised_before_the_rename(tmp_path):
    """h5py ignores an exception raised while it closes a file; the writer must still not publish
    the file, and the interrupt must reach the caller."""
    target = tmp_path / "net.loihi2.h5"
    with pytest.raises(KeyboardInterrupt), interrupts_raise():
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"complete-looking content")
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)  # the handler raises here
            except KeyboardInterrupt:
                pass  # what a library that swallows it does
    assert list(tmp_path.iterdir()) == []


def test_failure_while_moving_a_staged_set_removes_what_was_moved(tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_replace = os.replace
    moved = []

    def failing_replace(src, dst):
        if moved:
            raise OSError(28, "No space left on device")
        moved.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        with staged_outputs(out) as stage:
            for name in ("a.nir", "b.loihi2.h5", "report.json"):
                (stage / name).write_text(name)
    assert not out.exists()


def test_staged_set_keeps_earlier_files_it_does_not_replace(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SilifDeployError):
        with staged_outputs(out) as stage:
            (stage / "report.json").write_text("{}")
            raise SilifDeployError("failed")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_simulate_out_and_report_appear_together_or_neither(files, tmp_path, capsys, monkeypatch):
    """``simulate --out a/o.npz --report b/r.json``: when the rename that puts the second of the two
    into place fails (disk full), the first, already in place, is removed again; without it both appear."""
    np.save(tmp_path / "x.npy", np.load(files / "x.npy")[:4, :20])
    out, report = tmp_path / "a" / "o.npz", tmp_path / "b" / "r.json"
    argv = ["simulate", str(files / "m.loihi2.h5"), "--input", str(tmp_path / "x.npy"), "--out", str(out),
            "--report", str(report)]
    real_replace = os.replace
    into_place = []

    def second_fails(src, dst):
        if Path(dst) in (out, report):
            into_place.append(dst)
            if len(into_place) == 2:
                raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    assert main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err and len(into_place) == 2
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [tmp_path / "x.npy"]
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(argv) == 0
    assert json.loads(report.read_text())["provenance"]["input_sha256"] and np.load(out)["scores"].shape == (4, 10)


def test_output_name_of_254_characters_is_written(files, tmp_path, capsys):
    out = tmp_path / ("r" * 250 + ".npz")
    assert len(out.name) == 254
    x = np.load(files / "x.npy")[:2, :20]
    np.save(tmp_path / "x.npy", x)
    assert main(["simulate", str(files / "m.loihi2.h5"), "--input", str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    assert out.exists() and not _parts(tmp_path)
    with np.load(out) as z:
        assert z["scores"].shape == (2, 10)
