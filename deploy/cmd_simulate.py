"""``silif-deploy simulate``: run a model or artifact on an input file and save its outputs."""

from __future__ import annotations

import argparse

import numpy as np

from silif_deploy.converters.datasets import load_input
from silif_deploy.converters.files import atomic_output
from silif_deploy.deploy.arg_types import positive_int
from silif_deploy.deploy.engines import ENGINES, run_engine

HELP = "run a checkpoint, NIR file or fixed-point artifact on an input and write OUT.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint (.pt/.pth), NIR file (.nir) or fixed-point artifact (.loihi2.h5)")
    p.add_argument("--input", required=True, help="input: .npy/.npz (batch, time, channels) or an SHD/SSC .h5 file")
    p.add_argument("--out", required=True, help="output .npz: scores, prediction, spikes_<i>, readout_u")
    p.add_argument("--engine", choices=ENGINES, default=None, help="default: fixed for an artifact, float otherwise")
    p.add_argument("--model-type", default=None, help="needed for adLIF / cAdLIF checkpoints (identical keys)")
    p.add_argument("--record-states", action="store_true", help="also save the state trajectories")
    p.add_argument("--report", default=None, help="write the per-layer report (JSON) for this input")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples per batch (>= 1)")


def run(args: argparse.Namespace) -> int:
    data = load_input(args.input)
    result = run_engine(
        args.model, data.x, engine=args.engine, model_type=args.model_type,
        record_states=args.record_states, batch_size=args.batch_size,
    )
    arrays = result.to_arrays()
    if data.labels is not None:
        arrays["labels"] = data.labels
    with atomic_output(args.out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    if args.report:
        from silif_deploy.deploy.reporting import write_simulation_report

        write_simulation_report(args.model, data, result, args.report, engine=args.engine, model_type=args.model_type)
    _print_summary(result, data.labels)
    return 0


def _print_summary(result, labels) -> None:
    for i, s in enumerate(result.spikes):
        rate = s.mean()
        print(f"layer {i}: {s.shape[2]} neurons, {s.sum(axis=(1, 2)).mean():.1f} spikes/sample, "
              f"sparsity {1 - rate:.4f}")
    line = f"prediction: {result.prediction[:16].tolist()}{' ...' if len(result.prediction) > 16 else ''}"
    if labels is not None:
        line += f"; accuracy {np.mean(result.prediction == labels):.4f}"
    print(line)
