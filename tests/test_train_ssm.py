"""``silif-deploy train`` for SpikingSSM / binary S4D, and the load_digits sequences (spec ``spiking_ssm.md`` §12).

* A short training run on a tiny two-class sequence file (class 0: a pulse in the first quarter, class 1 in
  the last; noise on both) lowers the loss and writes our checkpoint; the checkpoint loads back through
  the one loader every command uses and gives the trained model's logits bit for bit (proves the saved
  config rebuilds the same network: prenorm, the neuron, sizes, the best epoch's state).
* The optimizer is the authors' split, checked against the parameter names as S4's
  ``configure_optimizers`` groups them (spec §6, §12): everything at (lr, weight decay) except the SSM
  kernel's dt and A (and, for SSMKernelDiag, B and C) at lr 0.001, weight decay 0 (C keeps the decay).
* An SHD-layout ``.h5`` trains an SSM as it trains SiLIF (binned, 140 channels, the file's class names).
* ``make-data --kind sklearn-digits``: the stated shapes, split sizes, stratification, raster order
  (each written row is one of scikit-learn's images read row by row), and a file ``open_input`` reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

from silif_deploy import load_model  # noqa: E402
from silif_deploy.converters.datasets import open_input  # noqa: E402
from silif_deploy.deploy.cli import main  # noqa: E402
from silif_deploy.deploy.training import TrainConfig, TrainingData, ssm_recipe, train  # noqa: E402
from test_train import write_shd_layout  # noqa: E402

L, N_SAMPLES = 16, 96


def tiny_sequences(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(N_SAMPLES) % 2
    x = rng.normal(0.0, 0.3, (N_SAMPLES, L, 2)).astype(np.float32)
    for i, label in enumerate(labels):
        start = rng.integers(0, 3) + (0 if label == 0 else L - 6)
        x[i, start : start + 3, label] += 2.0
    np.savez(path, x=x, labels=labels, class_names=np.array(["early", "late"]))
    return x, labels


@pytest.mark.parametrize("model_type", ["spiking_ssm", "binary_s4d"])
def test_training_lowers_the_loss_and_the_checkpoint_reproduces_the_logits(tmp_path: Path, model_type: str) -> None:
    x, labels = tiny_sequences(tmp_path / "tiny.npz")
    cfg = TrainConfig(model_type=model_type, hidden=8, layers=1, d_state=4, epochs=6, batch_size=8, lr=0.02,
                      pdrop=0.0, seed=0, threads=1)
    result = train(tmp_path / "tiny.npz", tmp_path / "m.pt", cfg)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    back = load_model(tmp_path / "m.pt")
    assert back.config.family == model_type and back.config.neuron == ("heaviside" if model_type == "binary_s4d" else "lif")
    assert back.config.prenorm and (back.config.d_model, back.config.d_state, back.config.n_layers) == (8, 4, 1)
    with torch.no_grad():
        expected = result.model(torch.as_tensor(x)).numpy()
    assert np.array_equal(back.run(x).scores, expected)
    payload = torch.load(tmp_path / "m.pt", map_location="cpu", weights_only=True)
    training = payload["extra"]["training"]
    assert training["history"] == result.history and training["class_names"] == ["early", "late"]
    assert training["best_valid_accuracy"] == max(row["valid_accuracy"] for row in result.history)


def test_the_cli_trains_with_the_sdn_and_refuses_it_for_binary_s4d(tmp_path: Path, capsys) -> None:
    tiny_sequences(tmp_path / "tiny.npz")
    common = ["--data", str(tmp_path / "tiny.npz"), "--d-model", "8", "--d-state", "4", "--blocks", "1",
              "--epochs", "1", "--batch-size", "16", "--threads", "1"]
    assert main(["train", *common, "--model-type", "spiking_ssm", "--neuron", "sdn", "-o", str(tmp_path / "sdn.pt")]) == 0
    assert load_model(tmp_path / "sdn.pt").config.neuron == "sdn"
    assert load_model(tmp_path / "sdn.pt", neuron="lif").config.neuron == "lif"  # deployment's soma, same weights
    capsys.readouterr()
    code = main(["train", *common, "--model-type", "binary_s4d", "--neuron", "sdn", "-o", str(tmp_path / "b.pt")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Heaviside" in err
    assert not (tmp_path / "b.pt").exists()
    code = main(["train", *common, "--model-type", "spiking_ssm", "--d-state", "5", "-o", str(tmp_path / "c.pt")])
    assert code == 2 and "even" in capsys.readouterr().err


def test_an_ssm_trains_on_an_shd_layout_file(tmp_path: Path) -> None:
    write_shd_layout(tmp_path / "tiny_shd_train.h5", n=32)
    assert main(["train", "--data", str(tmp_path / "tiny_shd_train.h5"), "--model-type", "binary_s4d", "--d-model", "8",
                 "--d-state", "4", "--blocks", "1", "--epochs", "1", "--nb-steps", "20", "--max-time", "0.2",
                 "--threads", "1", "-o", str(tmp_path / "m.pt")]) == 0
    model = load_model(tmp_path / "m.pt")
    assert model.config.d_input == 140 and model.config.n_classes == 2  # 700 units binned by 5; the file's keys
    training = torch.load(tmp_path / "m.pt", map_location="cpu", weights_only=True)["extra"]["training"]
    assert (training["nb_steps"], training["max_time"], training["class_names"]) == (20, 0.2, ["low-early", "high-late"])


@pytest.mark.parametrize("trainable_b", [False, True])
def test_the_optimizer_is_the_authors_split(trainable_b: bool) -> None:
    data = TrainingData(np.zeros((4, 8, 3), np.float32), np.zeros(4, np.int64), [], None)
    cfg = TrainConfig(model_type="spiking_ssm", hidden=6, layers=2, d_state=4, lr=0.01, weight_decay=0.05,
                      trainable_b=trainable_b)
    recipe = ssm_recipe(cfg, data, n_classes=3)
    names = {id(p): n for n, p in recipe.model.named_parameters()}
    groups = {(g["lr"], g["weight_decay"]): sorted(names[id(p)] for p in g["params"])
              for g in recipe.optimizer.param_groups}
    kernel = ("inv_dt", "B", "A_real", "A_imag") if trainable_b else ("log_dt", "log_A_real", "A_imag")
    slow = sorted(n for n in names.values() if n.split(".")[-2:-1] == ["kernel"] and n.split(".")[-1] in kernel)
    expected = {(0.001, 0.0): slow}
    if trainable_b:  # S4's SSMKernelDiag: C trains at the SSM rate but keeps the weight decay
        expected[(0.001, 0.05)] = sorted(n for n in names.values() if n.endswith("kernel.C"))
    expected[(0.01, 0.05)] = sorted(set(names.values()) - {n for v in expected.values() for n in v})
    assert groups == expected
    assert len(slow) == 2 * len(kernel)
    assert isinstance(recipe.optimizer, torch.optim.AdamW)


def test_load_digits_sequences(tmp_path: Path) -> None:
    assert main(["make-data", "--kind", "sklearn-digits", "--out", str(tmp_path), "--seed", "0"]) == 0
    train_src, test_src = open_input(tmp_path / "digits_seq_train.npz"), open_input(tmp_path / "digits_seq_test.npz")
    assert train_src.shape == (1437, 64, 1) and test_src.shape == (360, 64, 1)
    x_train, x_test = train_src.read_all(), test_src.read_all()
    assert x_train.dtype == np.uint8 and train_src.is_counts and int(x_train.max()) == 16
    digits = sklearn_datasets.load_digits()
    raster = {row.tobytes(): int(y) for row, y in zip(digits.data.astype(np.uint8), digits.target)}
    rows = [r.tobytes() for r in np.concatenate([x_train, x_test])[..., 0]]
    assert all(r in raster for r in rows)  # every sequence is one image, row by row
    assert sorted(rows) == sorted(r.tobytes() for r in digits.data.astype(np.uint8))  # each image once
    labels = np.concatenate([train_src.labels, test_src.labels])
    assert [raster[r] for r in rows] == labels.tolist()
    assert np.abs(np.bincount(test_src.labels) - 0.2 * np.bincount(digits.target)).max() <= 1  # stratified
    assert train_src.class_names == [str(k) for k in range(10)]
