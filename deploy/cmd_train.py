"""``silif-deploy train``: train a network on an SHD-layout file with the authors' recipe."""

from __future__ import annotations

import argparse

from silif_deploy.deploy.training import TrainConfig, train
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS

HELP = "train a SiLIF / C-SiLIF / baseline network on an SHD-layout .h5 file and save a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--data", required=True, help="training file in SHD layout (e.g. synth_shd_train.h5)")
    p.add_argument("-o", "--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--model-type", choices=HIDDEN_KINDS, default=d.model_type)
    p.add_argument("--hidden", type=int, default=d.hidden, help="neurons per hidden layer")
    p.add_argument("--layers", type=int, default=d.layers, help="hidden layers")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--pdrop", type=float, default=d.pdrop)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--factor", type=float, default=d.factor)
    p.add_argument("--nb-steps", type=int, default=d.nb_steps, help="time bins (reference binning)")
    p.add_argument("--max-time", type=float, default=d.max_time, help="seconds covered by the bins")
    p.add_argument("--valid-fraction", type=float, default=d.valid_fraction)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--init-state", choices=("zeros", "random"), default=d.init_state)
    p.add_argument("--threads", type=int, default=d.threads)


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        model_type=args.model_type, hidden=args.hidden, layers=args.layers, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, pdrop=args.pdrop, patience=args.patience, factor=args.factor,
        nb_steps=args.nb_steps, max_time=args.max_time, valid_fraction=args.valid_fraction, seed=args.seed,
        init_state=args.init_state, threads=args.threads,
    )
    result = train(args.data, args.out, cfg)
    print(f"best validation accuracy {result.best_valid_accuracy:.4f} at epoch {result.best_epoch}; wrote {args.out}")
    return 0
