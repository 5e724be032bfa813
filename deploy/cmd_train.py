"""``silif-deploy train``: train a network on an SHD-layout file with the authors' recipe."""

from __future__ import annotations

import argparse

from silif_deploy.deploy.arg_types import fraction, int_at_least, nonnegative_int, open_fraction, positive_float, positive_int
from silif_deploy.deploy.training import TrainConfig, train
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS

HELP = "train a SiLIF / C-SiLIF / baseline network on an SHD-layout .h5 file and save a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--data", required=True, help="training file in SHD layout (e.g. synth_shd_train.h5)")
    p.add_argument("-o", "--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--model-type", choices=HIDDEN_KINDS, default=d.model_type)
    p.add_argument("--hidden", type=positive_int, default=d.hidden, help="neurons per hidden layer")
    p.add_argument("--layers", type=positive_int, default=d.layers, help="hidden layers")
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--pdrop", type=fraction, default=d.pdrop)
    p.add_argument("--patience", type=positive_int, default=d.patience)
    p.add_argument("--factor", type=open_fraction, default=d.factor)
    p.add_argument("--nb-steps", type=int_at_least(2), default=d.nb_steps, help="time bins (reference binning)")
    p.add_argument("--max-time", type=positive_float, default=d.max_time, help="seconds covered by the bins")
    p.add_argument("--valid-fraction", type=fraction, default=d.valid_fraction)
    p.add_argument("--seed", type=nonnegative_int, default=d.seed)
    p.add_argument("--init-state", choices=("zeros", "random"), default=d.init_state)
    p.add_argument("--threads", type=positive_int, default=d.threads)


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
