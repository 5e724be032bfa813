"""Bin an SHD-layout test file with the reference binning and save it as a compact .npz input.

    python examples/pack_test_split.py DATA/synth_shd_test.h5 OUT.npz [--nb-steps 100 --max-time 1.0]

The .npz holds ``x`` (samples, steps, 140) uint8 counts, ``labels`` and ``class_names``: the
input format every ``silif-deploy`` command reads.
"""

import argparse

import numpy as np

from silif_deploy.converters.datasets import BINNING, read_spike_h5
from silif_deploy.converters.files import atomic_output, sha256_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("h5")
    p.add_argument("out")
    p.add_argument("--nb-steps", type=int, default=BINNING["ssc10"][0])
    p.add_argument("--max-time", type=float, default=BINNING["ssc10"][1])
    args = p.parse_args()
    data = read_spike_h5(args.h5, args.nb_steps, args.max_time)
    with atomic_output(args.out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, x=data.x, labels=data.labels, class_names=np.array(data.class_names),
                            source_sha256=np.array(sha256_file(args.h5)),
                            binning=np.array([args.nb_steps, args.max_time]))
    print(f"wrote {args.out}: {data.x.shape}, {data.dropped_events} events past max_time dropped")


if __name__ == "__main__":
    main()
