"""``silif-deploy train`` on a tiny SHD-layout file: it learns, and it writes a self-describing checkpoint.

The file has 80 samples of 2 classes that differ clearly: class 0 fires the low cochlea units early,
class 1 the high units late (plus background noise for both), binned to 20 steps of 0.2 s / 19.
80 samples in batches of 8 give ~35 optimizer steps in 4 epochs: with fewer, BatchNorm's running
statistics (momentum 0.1) still sit near their initial values and the eval-mode network stays silent.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from silif_deploy import load_model  # noqa: E402
from silif_deploy.converters.datasets import read_spike_h5  # noqa: E402
from silif_deploy.converters.files import sha256_file  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.deploy.training import evaluate  # noqa: E402

N_SAMPLES, EPOCHS, NB_STEPS, MAX_TIME = 80, 4, 20, 0.2
KEYS = ("low-early", "high-late")


def write_shd_layout(path, n: int = N_SAMPLES, seed: int = 0) -> np.ndarray:
    """SHD's HDF5 layout (spikes/times float16 and spikes/units uint16 as ragged rows, labels, extra/keys)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    times, units = [], []
    for label in labels:
        n_signal, n_noise = rng.integers(150, 250), rng.integers(20, 60)
        lo = 0 if label == 0 else 350
        t0 = 0.0 if label == 0 else 0.1
        t = np.concatenate([rng.uniform(t0, t0 + 0.09, n_signal), rng.uniform(0, 0.19, n_noise)])
        u = np.concatenate([rng.integers(lo, lo + 350, n_signal), rng.integers(0, 700, n_noise)])
        order = np.argsort(t)
        times.append(t[order].astype(np.float16))
        units.append(u[order].astype(np.uint16))
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", data=np.array(times, dtype=object), dtype=h5py.vlen_dtype(np.float16))
        f.create_dataset("spikes/units", data=np.array(units, dtype=object), dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=labels.astype(np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in KEYS]))
    return labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    data = d / "tiny_shd_train.h5"
    write_shd_layout(data)
    out = d / "tiny.pt"
    code = main(["train", "--data", str(data), "-o", str(out), "--model-type", "csilif", "--hidden", "16",
                 "--layers", "2", "--epochs", str(EPOCHS), "--batch-size", "8",
                 "--nb-steps", str(NB_STEPS), "--max-time", str(MAX_TIME), "--seed", "0", "--threads", "1"])
    assert code == 0
    payload = torch.load(out, map_location="cpu", weights_only=True)
    return data, out, payload


def test_checkpoint_describes_the_model_and_its_binning(trained):
    data, out, _ = trained
    model = load_model(out)
    config = model.config
    assert (config.model_type, config.n_inputs, config.hidden_sizes, config.n_classes) == ("csilif", 140, [16, 16], 2)
    assert config.extra["binning"] == [NB_STEPS, MAX_TIME]
    assert config.extra["class_names"] == list(KEYS)
    assert config.extra["dt"] == pytest.approx(MAX_TIME / (NB_STEPS - 1))
    assert not model.training and config.init_state == "zeros"


def test_checkpoint_records_the_training_run(trained):
    data, _, payload = trained
    training = payload["extra"]["training"]
    assert training["data_sha256"] == sha256_file(data)
    assert (training["epochs"], training["hidden"], training["nb_steps"], training["max_time"]) == (EPOCHS, 16, NB_STEPS, MAX_TIME)
    history = training["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    best = max(history, key=lambda row: row["valid_accuracy"])
    assert training["best_valid_accuracy"] == best["valid_accuracy"]
    assert training["best_epoch"] == best["epoch"]


def test_training_learns(trained):
    """The loss falls, validation accuracy rises to 100 %, and the saved model separates the classes.

    C-SiLIF: it learns this task in 2 epochs; SiLIF needs about 12 here (its slow 2nd-order dynamics)."""
    data, out, payload = trained
    history = payload["extra"]["training"]["history"]
    losses = [row["loss"] for row in history]
    assert losses[-1] < 0.1 * losses[0], losses
    assert history[0]["valid_accuracy"] < 1.0 == history[-1]["valid_accuracy"], history
    spikes = read_spike_h5(data, NB_STEPS, MAX_TIME)
    assert evaluate(load_model(out), spikes.x, spikes.labels) >= 0.95  # a fresh network is at chance (0.5)


def test_missing_data_file_is_a_one_line_error(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "m.pt"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "nope.h5' does not exist" in err and "make-data" in err
    assert not (tmp_path / "m.pt").exists()


def test_non_shd_h5_is_a_one_line_error(tmp_path, capsys):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros((4, 20, 140)))
    code = main(["train", "--data", str(other), "-o", str(tmp_path / "m.pt"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not an SHD/SSC file" in err and "spikes/times" in err
    assert not (tmp_path / "m.pt").exists()
