"""``silif-deploy golden``: record the bit-exact fixed-point outputs of an artifact on an input."""

from __future__ import annotations

import argparse

from silif_deploy.converters.datasets import open_input
from silif_deploy.deploy.verification import write_golden

HELP = "write a golden file: an input and the artifact's bit-exact outputs on it (for `verify`)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", help="fixed-point artifact (.loihi2.h5)")
    p.add_argument("--input", required=True, help="input: .npy/.npz (batch, time, channels) or SHD/SSC .h5")
    p.add_argument("--binning", default=None, help="for .h5 inputs: shd, ssc, ssc10 (default from the file name)")
    p.add_argument("-o", "--out", required=True, help="golden file to write (.npz)")


def run(args: argparse.Namespace) -> int:
    source = open_input(args.input, binning=args.binning)  # read in chunks as the golden is written
    write_golden(args.artifact, source, args.out)
    print(f"wrote {args.out}: {len(source)} samples x {source.shape[1]} steps")
    return 0
