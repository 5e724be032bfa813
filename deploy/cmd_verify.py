"""``silif-deploy verify``: bit-exact regression against a golden, or an accuracy budget on data.

Exit status: 0 when the check passes, 1 when it fails (with a short diff), 2 on bad input.
"""

from __future__ import annotations

import argparse

from silif_deploy.deploy.arg_types import nonnegative_float
from silif_deploy.errors import SilifDeployError

HELP = "check an artifact against a golden file (bit-exact) or fixed-vs-float accuracy on labelled data"
EXIT_FAILED = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="fixed-point artifact (.loihi2.h5), or with --data a checkpoint too (quantized in "
                                 "memory: weights-only ranges; a SpikingSSM / binary-S4D checkpoint is calibrated on --data)")
    p.add_argument("--golden", help="golden .npz written by `silif-deploy golden`")
    p.add_argument("--data", help="labelled test data: SHD/SSC-layout .h5 or .npz with labels")
    p.add_argument("--binning", default=None, help="for .h5 data: shd, ssc, ssc10 (default: the model's, else from the file name)")
    p.add_argument("--max-accuracy-drop", type=nonnegative_float, default=0.5, help="percentage points fixed point may lose, a finite number >= 0 (default 0.5)")
    p.add_argument("--profile", default=None, help="hardware profile when MODEL is a checkpoint (default loihi2)")
    p.add_argument("--model-type", default=None, help="for adLIF / cAdLIF checkpoints")
    from silif_deploy.deploy.sharding import add_scheduler_argument

    add_scheduler_argument(p, shard_size=True)  # for --data


def run(args: argparse.Namespace) -> int:
    if bool(args.golden) == bool(args.data):
        raise SilifDeployError("give exactly one of --golden GOLDEN.npz or --data TEST.h5")
    if args.golden:
        from silif_deploy.deploy.verification import verify_golden

        notes: list[str] = []
        first, counts = verify_golden(args.model, args.golden, notes)
        if first is None:
            print(f"OK: bit-exact ({', '.join(f'{k}: 0 mismatches' for k in counts)})")
        else:
            print(f"FAILED: {first}")
            print("mismatches: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
        for note in notes:
            print(f"note: {note}")
        return 0 if first is None else EXIT_FAILED
    from silif_deploy.deploy.accuracy_check import fixed_and_float_predictions
    from silif_deploy.deploy.verification import accuracy_drop

    labels, float_pred, fixed_pred = fixed_and_float_predictions(
        args.model, args.data, binning=args.binning, profile=args.profile, model_type=args.model_type,
        scheduler=args.scheduler, shard_size=args.shard_size,
    )
    acc_float, acc_fixed, drop = accuracy_drop(float_pred, fixed_pred, labels)
    line = (f"float accuracy {100 * acc_float:.2f} %, fixed-point accuracy {100 * acc_fixed:.2f} %, "
            f"drop {drop:.2f} pp (budget {args.max_accuracy_drop:.2f} pp) on {len(labels)} samples")
    if drop > args.max_accuracy_drop:
        print(f"FAILED: {line}")
        return EXIT_FAILED
    print(f"OK: {line}")
    return 0
