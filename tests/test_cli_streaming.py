"""Streaming inputs and outputs, start-up imports, progress and Ctrl-C of the CLI.

What each test proves: the chunk readers give the bytes ``np.load`` gives (an independent reader)
whatever the chunk size; ``simulate``'s two output formats hold the same values as the in-memory
``simulate`` of the whole input (packed spikes unpack to its rasters), with provenance, and so does
``golden``'s file, written batch by batch; an
interrupted run leaves no file; start-up imports no heavy module for a light command; a closed stdout
ends a command quietly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

from random_networks import float_network

from silif_deploy.converters.artifact import write_artifact
from silif_deploy.converters.datasets import InputSource, open_input
from silif_deploy.converters.files import sha256_file
from silif_deploy.converters.quantize import quantize
from silif_deploy.deploy import engines
from silif_deploy.deploy.cli import EXIT_BROKEN_PIPE, main
from silif_deploy.deploy.verification import GOLDEN_BATCH
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.profile import load_profile
from silif_deploy.hw_models.simulator import simulate

N_INPUTS, N_CLASSES = 12, 4


def counts(n: int, steps: int = 15, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, steps, N_INPUTS)) < 0.2, rng.integers(1, 4, (n, steps, N_INPUTS)), 0).astype(np.int16)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    rng = np.random.default_rng(3)
    network = quantize(float_network(rng, "silif", [N_INPUTS, 9, 7], N_CLASSES), load_profile("loihi2"))
    path = tmp_path_factory.mktemp("art") / "net.loihi2.h5"
    write_artifact(network, path)
    return path, network


@pytest.mark.parametrize("size", [1, 4, 7, 64])
def test_chunk_readers_give_np_load_bytes(tmp_path, size):
    x = counts(11)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "plain.npz", input=x, labels=np.arange(11))
    np.savez_compressed(tmp_path / "zipped.npz", x=x)
    for name in ("x.npy", "plain.npz", "zipped.npz"):
        source = open_input(tmp_path / name)
        parts = list(source.chunks(size))
        assert [len(p) for p in parts] == [min(size, 11 - i) for i in range(0, 11, size)]
        assert np.concatenate(parts).tobytes() == x.tobytes() and all(p.flags.writeable for p in parts)
        assert source.is_counts and source.stats.peak == x.max() and source.source_sha256 == sha256_file(tmp_path / name)
    assert open_input(tmp_path / "plain.npz").labels.tolist() == list(range(11))


def test_a_bad_chunk_is_refused_where_it_enters(tmp_path):
    x = counts(9).astype(np.float32)
    x[7, 3, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    source = open_input(tmp_path / "x.npy")
    with pytest.raises(SilifDeployError, match="NaN"):
        for _ in source.chunks(4):
            pass


@pytest.mark.parametrize("record", [None, "spikes,readout,states"])
def test_h5_and_npz_outputs_hold_the_in_memory_run(artifact, tmp_path, capsys, record):
    path, network = artifact
    x = counts(10)
    np.savez(tmp_path / "in.npz", x=x, labels=np.arange(10) % N_CLASSES)
    expected = simulate(network, x, record_states=True)
    extra = ["--record", record] if record else []
    for out in ("o.h5", "o.npz"):
        assert main(["simulate", str(path), "--input", str(tmp_path / "in.npz"), "--out", str(tmp_path / out),
                     "--batch-size", "3", *extra]) == 0, capsys.readouterr().err
    with h5py.File(tmp_path / "o.h5") as f, np.load(tmp_path / "o.npz") as z:
        assert sorted(f.keys()) == sorted(z.files)
        for key in ("scores", "prediction", "labels", "spike_counts", "overflow_events"):
            np.testing.assert_array_equal(f[key][()], z[key], err_msg=key)
        np.testing.assert_array_equal(z["scores"], expected.scores)
        np.testing.assert_array_equal(z["spike_counts"], [[s[b].sum() for s in expected.spikes] for b in range(10)])
        if record:
            for i, s in enumerate(expected.spikes):
                n = f[f"spikes_{i}"].attrs["n_neurons"]
                np.testing.assert_array_equal(np.unpackbits(f[f"spikes_{i}"][()], axis=-1)[..., :n].astype(bool), s)
                np.testing.assert_array_equal(z[f"spikes_{i}"], s)
            np.testing.assert_array_equal(z["readout_u"], expected.readout_u)
            np.testing.assert_array_equal(f["state_v_readout"][()], expected.states["v_readout"])
        else:
            assert not any(k.startswith(("spikes_", "readout", "state_")) for k in z.files)
        prov = json.loads(f.attrs["provenance"])
        assert prov["input_sha256"] == sha256_file(tmp_path / "in.npz") and prov["engine"] == "fixed"
        assert prov["model_sha256"] == sha256_file(path) and prov["hardware_profile"] == "loihi2"
        assert json.loads(zipfile.ZipFile(tmp_path / "o.npz").comment)["format"] == "silif-deploy-simulation"
        summary = json.loads(f.attrs["summary"])
        assert summary["samples"] == 10 and [layer["neurons"] for layer in summary["layers"]] == [9, 7]


def test_golden_is_written_batch_by_batch(artifact, tmp_path, monkeypatch):
    """``golden`` reads its input GOLDEN_BATCH samples at a time (never whole) and writes each array as
    the batches come: over three batches its file holds what one in-memory run of the whole input gives."""
    path, network = artifact
    x = counts(2 * GOLDEN_BATCH + 3)
    np.save(tmp_path / "in.npy", x)
    sizes, chunks = [], InputSource.chunks
    monkeypatch.setattr(InputSource, "chunks", lambda self, size: (sizes.append(size), chunks(self, size))[1])
    assert main(["golden", str(path), "--input", str(tmp_path / "in.npy"), "-o", str(tmp_path / "g.npz")]) == 0
    assert sizes == [GOLDEN_BATCH]
    whole = simulate(network, x, record_states=True)
    with np.load(tmp_path / "g.npz") as g:
        np.testing.assert_array_equal(g["input"], x)
        for i, spikes in enumerate(whole.spikes):
            np.testing.assert_array_equal(np.unpackbits(g[f"spikes_{i}"], axis=-1)[..., : spikes.shape[-1]], spikes)
        np.testing.assert_array_equal(g["readout_v"], whole.states["v_readout"])


def test_ctrl_c_leaves_no_output(artifact, tmp_path, capsys, monkeypatch):
    path, _ = artifact
    np.save(tmp_path / "in.npy", counts(10))
    opened = engines.open_engine

    def interrupted(*args, **kwargs):
        engine = opened(*args, **kwargs)
        calls = []

        def run(x):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return engine_run(x)

        engine_run, engine.run = engine.run, run
        return engine

    monkeypatch.setattr(engines, "open_engine", interrupted)
    for out in ("o.h5", "o.npz"):
        assert main(["simulate", str(path), "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / out),
                     "--batch-size", "3", "--report", str(tmp_path / "r.json")]) == 130
        assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]  # no output, no temporary file or folder


def test_progress_bar_shows_samples_per_second(artifact, tmp_path, capsys, monkeypatch):
    path, _ = artifact
    np.save(tmp_path / "in.npy", counts(6))
    monkeypatch.setenv("SILIF_DEPLOY_PROGRESS", "1")
    assert main(["simulate", str(path), "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / "o.h5")]) == 0
    assert "sample/s" in capsys.readouterr().err


def test_unknown_record_choice_is_one_line(artifact, tmp_path, capsys):
    path, _ = artifact
    np.save(tmp_path / "in.npy", counts(2))
    assert main(["simulate", str(path), "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / "o.h5"),
                 "--record", "spikes,volts"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown choice 'volts'" in err
    assert not (tmp_path / "o.h5").exists()


def test_start_up_imports_only_the_chosen_command():
    code = ("import sys\nfrom silif_deploy.deploy.cli import build_parser\n"
            "build_parser(''); build_parser('inspect'); build_parser('simulate')\n"
            "print(sorted(m for m in ('torch', 'scipy', 'matplotlib', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    helps = subprocess.run([sys.executable, "-m", "silif_deploy.deploy.cli", "--help"], capture_output=True, text=True)
    assert all(name in helps.stdout for name in ("export", "simulate", "make-data", "compare"))


def test_inspect_of_an_artifact_runs_without_torch(artifact):
    """Reading and describing an artifact needs h5py and numpy only: torch's import alone took 1.4 s
    of ``inspect``'s 2.3 s (netx_export took a constant from the float readout module)."""
    code = ("import sys\nfrom silif_deploy.deploy.cli import main\n"
            f"assert main(['inspect', {str(artifact[0])!r}]) == 0\nprint('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "False"


def test_closed_stdout_ends_quietly(artifact):
    """``silif-deploy inspect ART | head -1``, with the reader gone before the first write (the read end
    is closed before the process starts, so every write fails): exit 141 and nothing on stderr, not a
    BrokenPipeError reported as a file error (exit 2) or as "Exception ignored" at the exit's flush."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run([sys.executable, "-m", "silif_deploy.deploy.cli", "inspect", str(artifact[0])],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (run.returncode, run.stderr) == (EXIT_BROKEN_PIPE, "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_program_keeps_freed_batch_arrays_for_the_next_batch():
    """A batch's arrays (tens of MB) freed and allocated again by the next batch: by default glibc
    unmaps a block that large, and the next one is mapped and zeroed anew (``report`` spent 9–11 s
    of 22–26 s in the kernel on 2,000 SSC samples); ``cli.program`` has it keep them in the heap.
    This checks that the freed block stays (glibc's ``mallinfo2``); ``benchmarks/bench_cli.py``
    measures the time it saves."""
    code = ("import ctypes, sys, numpy as np\nfrom silif_deploy.deploy import cli\n"
            "class Info(ctypes.Structure):\n    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', "
            "'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]\n"
            "libc = ctypes.CDLL('libc.so.6'); libc.mallinfo2.restype = Info\n"
            "if sys.argv[1] == 'tuned': cli.reuse_freed_memory()\n"
            "np.ones(64 << 20, np.uint8)\nprint(libc.mallinfo2().fordblks >> 20)")
    kept_mib = {how: int(subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True,
                                        check=True).stdout) for how in ("default", "tuned")}
    assert kept_mib["default"] < 64 <= kept_mib["tuned"], kept_mib
