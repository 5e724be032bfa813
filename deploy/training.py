"""Train a network with its authors' recipe: the SiLIF family (``neurons.md`` §14) or a spiking SSM.

**SiLIF family** (SiLIF, C-SiLIF, the baselines): Adam (one learning rate, no weight decay),
``ReduceLROnPlateau(mode="max")`` stepped on the validation accuracy (min lr 1e-6), cross-entropy on
the summed-softmax scores, boxcar surrogate, dropout after every hidden layer. States start at zero,
as on hardware (the authors draw them at random; ``--init-state random`` restores that).

**SpikingSSM and binary S4D** (``converters/families/spiking_ssm.py``, spec ``spiking_ssm.md`` §6,
§12): the authors' optimizer split (``make_optimizer``: AdamW with weight decay over everything but
the SSM kernel, whose dt and A train at ``min(lr, ssm_lr)`` without weight decay) and their step
(``train_step``: cross-entropy of the logits, kernel form), a cosine learning-rate decay over the
epochs (stepped per epoch), BPTT through the exact LIF by default (what deployment runs) or
through the authors' SDN (``neuron="sdn"``); binary S4D's Heaviside has no choice.

Both: the same split (``valid_fraction`` of the training file, seeded), the same batches, and the
best validation epoch kept. Data: an SHD-layout ``.h5`` (binned with ``nb_steps`` / ``max_time``) or
an ``.npz`` with ``x`` (batch, time, channels) and ``labels``, e.g. ``make-data --kind sklearn-digits``.
The checkpoint is the project's self-describing format; its ``extra.training`` holds this config,
the data hash and the history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from silif_deploy.converters.checkpoint import import_torch, save_checkpoint
from silif_deploy.converters.datasets import BINNING, load_input, read_spike_h5
from silif_deploy.converters.files import sha256_file
from silif_deploy.converters.input_checks import check_labels
from silif_deploy.errors import SilifDeployError

DEFAULT_LR = {"silif": 5e-3, "ssm": 0.01}
"""Learning rates of the two recipes when none is given (the SiLIF authors' Adam; the S4 / SpikingSSM AdamW)."""


@dataclass
class TrainConfig:
    model_type: str = "silif"
    hidden: int = 128
    layers: int = 2
    epochs: int = 30
    lr: float | None = None
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
    # SpikingSSM / binary S4D only
    d_state: int = 16
    neuron: str = "lif"
    prenorm: bool = True
    trainable_b: bool = False
    weight_decay: float = 0.01
    ssm_lr: float = 0.001


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    model: Any = None
    """The trained model (eval mode, the best epoch's state), as the checkpoint holds it."""


@dataclass
class TrainingData:
    """A training file in memory: ``x`` (batch, time, channels), labels, class names, and the binning
    of an SHD-layout file (None for an array file)."""

    x: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    binning: tuple[int, float] | None


def ssm_model_types() -> tuple[str, str]:
    """The ``--model-type`` names of the spiking SSM families (the family names their checkpoints record)."""
    from silif_deploy.converters.families.spiking_ssm import FAMILY_BINARY_S4D, FAMILY_SPIKING_SSM

    return FAMILY_SPIKING_SSM, FAMILY_BINARY_S4D


def read_training_data(path: str | os.PathLike, nb_steps: int, max_time: float) -> TrainingData:
    """An SHD-layout ``.h5`` binned as the reference does, or an ``.npz`` / ``.npy`` array file with labels."""
    if Path(path).suffix.lower() in (".h5", ".hdf5"):
        data = read_spike_h5(path, nb_steps, max_time)
        return TrainingData(data.x, data.labels, list(data.class_names or []), (nb_steps, float(max_time)))
    data = load_input(path)
    if data.labels is None:
        raise SilifDeployError(f"'{path}' has no 'labels' array; training needs one label per sample")
    return TrainingData(data.x, data.labels, list(data.class_names or []), None)


def learning_rate(cfg: TrainConfig) -> float:
    """``cfg.lr``, or its recipe's default (:data:`DEFAULT_LR`) when None."""
    if cfg.lr is not None:
        return cfg.lr
    return DEFAULT_LR["ssm" if cfg.model_type in ssm_model_types() else "silif"]


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def evaluate(model, x: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> float:
    """Accuracy of ``model`` (eval mode) on ``x``: the fraction of argmax scores (logits) equal to the labels."""
    torch = import_torch()
    model.eval()
    correct = 0
    with torch.no_grad():
        for idx in _batches(len(x), batch_size, None):
            scores = model(torch.as_tensor(x[idx], dtype=torch.float32))
            correct += int((scores.argmax(1).numpy() == labels[idx]).sum())
    return correct / max(len(x), 1)


class Recipe:
    """One family's model, optimizer, step (a batch in, its loss out) and learning-rate schedule,
    built by a recipe function from a config whose ``lr`` :func:`train` has resolved (:func:`learning_rate`)."""

    def __init__(self, model, optimizer, step, scheduler):
        self.model, self.optimizer, self.step, self.scheduler = model, optimizer, step, scheduler

    def end_epoch(self, valid_acc: float) -> None:
        torch = import_torch()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):  # steps on the validation accuracy
            self.scheduler.step(valid_acc)
        else:
            self.scheduler.step()


def silif_recipe(cfg: TrainConfig, data: TrainingData, n_classes: int) -> Recipe:
    torch = import_torch()
    from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork

    extra = {"class_names": data.class_names}
    if data.binning is not None:
        extra.update(dt=cfg.max_time / (cfg.nb_steps - 1), binning=list(data.binning))
    model = SpikingNetwork(NetworkConfig(
        model_type=cfg.model_type, n_inputs=data.x.shape[2], hidden_sizes=[cfg.hidden] * cfg.layers,
        n_classes=n_classes, pdrop=cfg.pdrop, init_state=cfg.init_state, extra=extra,
    ))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.factor, patience=cfg.patience, min_lr=1e-6
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb, yb) -> float:
        model.train()
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.item())

    return Recipe(model, optimizer, step, scheduler)


def ssm_recipe(cfg: TrainConfig, data: TrainingData, n_classes: int) -> Recipe:
    torch = import_torch()
    from silif_deploy.converters.families import spiking_ssm as ssm

    binary = cfg.model_type == ssm.FAMILY_BINARY_S4D
    if binary and cfg.neuron != "lif":
        raise SilifDeployError(f"binary S4D spikes with a Heaviside; --neuron {cfg.neuron} applies to spiking_ssm only")
    config = ssm.SpikingSSMConfig(
        d_input=data.x.shape[2], d_model=cfg.hidden, d_state=cfg.d_state, n_layers=cfg.layers, n_classes=n_classes,
        prenorm=cfg.prenorm, norm="batch", trainable_B=cfg.trainable_b, neuron="heaviside" if binary else cfg.neuron,
        dropout=cfg.pdrop, ssm_lr=cfg.ssm_lr,
    )
    model = ssm.build_model(config)
    optimizer = ssm.make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return Recipe(model, optimizer, lambda xb, yb: ssm.train_step(model, optimizer, xb, yb), scheduler)


def train(data_path: str | os.PathLike, out_path: str | os.PathLike, cfg: TrainConfig) -> TrainResult:
    """Train on an SHD-layout or array file; save the best model as a self-describing checkpoint."""
    torch = import_torch()
    is_ssm = cfg.model_type in ssm_model_types()
    if not is_ssm and cfg.neuron != "lif":
        raise SilifDeployError(f"--neuron {cfg.neuron} applies to spiking_ssm only; {cfg.model_type} has its own neuron")
    cfg = replace(cfg, lr=learning_rate(cfg))
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    data = read_training_data(data_path, cfg.nb_steps, cfg.max_time)
    if len(data.labels) < 2:
        raise SilifDeployError(f"'{data_path}' has {len(data.labels)} samples; training needs at least 2 (train and validation)")
    n_valid = max(1, int(round(cfg.valid_fraction * len(data.labels))))
    perm = rng.permutation(len(data.labels))
    valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
    x_train, y_train = data.x[train_idx], data.labels[train_idx]
    x_valid, y_valid = data.x[valid_idx], data.labels[valid_idx]
    n_classes = len(data.class_names) if data.class_names else int(data.labels.max()) + 1
    check_labels(data.labels, str(data_path), n_classes)

    recipe = (ssm_recipe if is_ssm else silif_recipe)(cfg, data, n_classes)
    model, optimizer = recipe.model, recipe.optimizer
    result = TrainResult(best_epoch=-1, best_valid_accuracy=-1.0)
    best_state = None
    for epoch in range(cfg.epochs):
        total_loss, seen = 0.0, 0
        bar = tqdm(list(_batches(len(x_train), cfg.batch_size, rng)), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for idx in bar:
            xb = torch.as_tensor(x_train[idx], dtype=torch.float32)
            yb = torch.as_tensor(y_train[idx], dtype=torch.long)
            total_loss += recipe.step(xb, yb) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        valid_acc = evaluate(model, x_valid, y_valid)
        row = {"epoch": epoch + 1, "loss": total_loss / seen, "valid_accuracy": valid_acc,
               "lr": optimizer.param_groups[0]["lr"]}  # the rate this epoch trained at
        recipe.end_epoch(valid_acc)
        result.history.append(row)
        tqdm.write(f"epoch {epoch + 1:3d}  loss {row['loss']:.4f}  valid acc {valid_acc:.4f}  lr {row['lr']:.2e}")
        if valid_acc > result.best_valid_accuracy:
            result.best_epoch, result.best_valid_accuracy = epoch + 1, valid_acc
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    result.model = model
    save_checkpoint(model, out_path, extra={
        "training": {**cfg.__dict__, "data_sha256": sha256_file(data_path), "class_names": data.class_names,
                     "best_epoch": result.best_epoch, "best_valid_accuracy": result.best_valid_accuracy,
                     "history": result.history},
    })
    return result
