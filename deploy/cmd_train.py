"""``silif-deploy train``: train a network with its authors' recipe and save a checkpoint."""

from __future__ import annotations

import argparse

from silif_deploy.deploy.arg_types import fraction, int_at_least, nonnegative_int, open_fraction, positive_float, positive_int
from silif_deploy.deploy.training import DEFAULT_LR, TrainConfig, ssm_model_types, train
from silif_deploy.hw_models.neuron_kinds import HIDDEN_KINDS

HELP = ("train a SiLIF / C-SiLIF / baseline network, a SpikingSSM or a binary S4D on an SHD-layout .h5 or an "
        ".npz (x, labels) file and save a checkpoint")


def even_int(text: str) -> int:
    value = positive_int(text)
    if value % 2:
        raise argparse.ArgumentTypeError(f"must be even (N/2 complex modes per channel), got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--data", required=True,
                   help="training file: SHD layout (e.g. synth_shd_train.h5) or .npz with x (batch, time, channels) "
                        "and labels (e.g. digits_seq_train.npz)")
    p.add_argument("-o", "--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--model-type", choices=(*HIDDEN_KINDS, *ssm_model_types()), default=d.model_type,
                   help="binary_s4d is a reconstruction (its authors' code is unpublished)")
    p.add_argument("--hidden", "--d-model", type=positive_int, default=d.hidden,
                   help="neurons per hidden layer; for the SSMs the channels H of every block")
    p.add_argument("--layers", "--blocks", type=positive_int, default=d.layers, help="hidden layers / SSM blocks")
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate (default {DEFAULT_LR['silif']:g} for the SiLIF family, {DEFAULT_LR['ssm']:g} for the SSMs)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--pdrop", type=fraction, default=d.pdrop, help="dropout")
    p.add_argument("--patience", type=positive_int, default=d.patience, help="SiLIF family: ReduceLROnPlateau patience")
    p.add_argument("--factor", type=open_fraction, default=d.factor, help="SiLIF family: ReduceLROnPlateau factor")
    p.add_argument("--nb-steps", type=int_at_least(2), default=d.nb_steps, help="time bins of an .h5 file (reference binning)")
    p.add_argument("--max-time", type=positive_float, default=d.max_time, help="seconds covered by the bins of an .h5 file")
    p.add_argument("--valid-fraction", type=fraction, default=d.valid_fraction)
    p.add_argument("--seed", type=nonnegative_int, default=d.seed)
    p.add_argument("--init-state", choices=("zeros", "random"), default=d.init_state)
    p.add_argument("--threads", type=positive_int, default=d.threads)
    ssm = p.add_argument_group("SpikingSSM / binary S4D")
    ssm.add_argument("--d-state", type=even_int, default=d.d_state, help="state size N per channel (N/2 complex modes)")
    ssm.add_argument("--neuron", choices=("lif", "sdn"), default=d.neuron,
                     help="SpikingSSM soma in training: lif (default: BPTT through the exact LIF, what deployment runs) "
                          "or sdn (the authors' surrogate dynamic network)")
    ssm.add_argument("--norm-placement", choices=("pre", "post"), default="pre" if d.prenorm else "post",
                     help="pre: BatchNorm before each block; post: the authors' post-norm (computed and discarded)")
    ssm.add_argument("--trainable-b", action="store_true", help="S4's SSMKernelDiag (trainable B) instead of S4DKernel")
    ssm.add_argument("--weight-decay", type=fraction, default=d.weight_decay, help="AdamW weight decay (not on the SSM kernel)")
    ssm.add_argument("--ssm-lr", type=positive_float, default=d.ssm_lr, help="learning-rate cap of the SSM kernel's dt and A")


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        model_type=args.model_type, hidden=args.hidden, layers=args.layers, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, pdrop=args.pdrop, patience=args.patience, factor=args.factor,
        nb_steps=args.nb_steps, max_time=args.max_time, valid_fraction=args.valid_fraction, seed=args.seed,
        init_state=args.init_state, threads=args.threads, d_state=args.d_state, neuron=args.neuron,
        prenorm=args.norm_placement == "pre", trainable_b=args.trainable_b, weight_decay=args.weight_decay,
        ssm_lr=args.ssm_lr,
    )
    result = train(args.data, args.out, cfg)
    print(f"best validation accuracy {result.best_valid_accuracy:.4f} at epoch {result.best_epoch}; wrote {args.out}")
    return 0
