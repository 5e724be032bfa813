"""Train a SiLIF-family network with the authors' recipe (``neurons.md`` §14).

Adam (one learning rate, no weight decay), ``ReduceLROnPlateau(mode="max")`` stepped on the
validation accuracy (min lr 1e-6), cross-entropy on the summed-softmax scores, boxcar surrogate,
dropout after every hidden layer; the best validation epoch is kept. States start at zero, as on
hardware (the authors draw them at random; ``--init-state random`` restores that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from silif_deploy.converters.checkpoint import import_torch, save_checkpoint
from silif_deploy.converters.datasets import BINNING, read_spike_h5
from silif_deploy.converters.files import sha256_file
from silif_deploy.converters.input_checks import check_labels
from silif_deploy.errors import SilifDeployError


@dataclass
class TrainConfig:
    model_type: str = "silif"
    hidden: int = 128
    layers: int = 2
    epochs: int = 30
    lr: float = 5e-3
    batch_size: int = 64
    pdrop: float = 0.1
    patience: int = 5
    factor: float = 0.7
    nb_steps: int = BINNING["ssc10"][0]
    max_time: float = BINNING["ssc10"][1]
    valid_fraction: float = 0.15
    seed: int = 0
    init_state: str = "zeros"
    threads: int = 2


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def evaluate(model, x: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> float:
    """Accuracy of ``model`` (eval mode) on counts ``x``: the fraction of argmax scores equal to the labels."""
    torch = import_torch()
    model.eval()
    correct = 0
    with torch.no_grad():
        for idx in _batches(len(x), batch_size, None):
            scores = model(torch.as_tensor(x[idx], dtype=torch.float32))
            correct += int((scores.argmax(1).numpy() == labels[idx]).sum())
    return correct / max(len(x), 1)


def train(data_path: str | os.PathLike, out_path: str | os.PathLike, cfg: TrainConfig) -> TrainResult:
    """Train on an SHD-layout file; save the best model as a self-describing checkpoint."""
    torch = import_torch()
    from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    data = read_spike_h5(data_path, cfg.nb_steps, cfg.max_time)
    if len(data.labels) < 2:
        raise SilifDeployError(f"'{data_path}' has {len(data.labels)} samples; training needs at least 2 (train and validation)")
    n_valid = max(1, int(round(cfg.valid_fraction * len(data.labels))))
    perm = rng.permutation(len(data.labels))
    valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
    x_train, y_train = data.x[train_idx], data.labels[train_idx]
    x_valid, y_valid = data.x[valid_idx], data.labels[valid_idx]
    n_classes = len(data.class_names) if data.class_names else int(data.labels.max()) + 1
    check_labels(data.labels, str(data_path), n_classes)

    model = SpikingNetwork(NetworkConfig(
        model_type=cfg.model_type, n_inputs=data.x.shape[2], hidden_sizes=[cfg.hidden] * cfg.layers,
        n_classes=n_classes, pdrop=cfg.pdrop, init_state=cfg.init_state,
        extra={"dt": cfg.max_time / (cfg.nb_steps - 1), "binning": [cfg.nb_steps, cfg.max_time],
               "class_names": list(data.class_names or [])},
    ))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.factor, patience=cfg.patience, min_lr=1e-6
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    result = TrainResult(best_epoch=-1, best_valid_accuracy=-1.0)
    best_state = None
    for epoch in range(cfg.epochs):
        model.train()
        total_loss, seen = 0.0, 0
        bar = tqdm(list(_batches(len(x_train), cfg.batch_size, rng)), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for idx in bar:
            xb = torch.as_tensor(x_train[idx], dtype=torch.float32)
            yb = torch.as_tensor(y_train[idx], dtype=torch.long)
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        valid_acc = evaluate(model, x_valid, y_valid)
        scheduler.step(valid_acc)
        row = {"epoch": epoch + 1, "loss": total_loss / seen, "valid_accuracy": valid_acc,
               "lr": optimizer.param_groups[0]["lr"]}
        result.history.append(row)
        tqdm.write(f"epoch {epoch + 1:3d}  loss {row['loss']:.4f}  valid acc {valid_acc:.4f}  lr {row['lr']:.2e}")
        if valid_acc > result.best_valid_accuracy:
            result.best_epoch, result.best_valid_accuracy = epoch + 1, valid_acc
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    save_checkpoint(model, out_path, extra={
        "training": {**cfg.__dict__, "data_sha256": sha256_file(data_path), "best_epoch": result.best_epoch,
                     "best_valid_accuracy": result.best_valid_accuracy, "history": result.history},
    })
    return result
