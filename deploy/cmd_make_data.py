"""``silif-deploy make-data``: the offline data sets: synthesized stand-ins (``data.md`` §4) or a
package's own data as sequences (``deploy/sequence_data.py``, spec ``spiking_ssm.md`` §12)."""

from __future__ import annotations

import argparse
import time

from silif_deploy.deploy.arg_types import int_at_least, nonnegative_int, positive_int
from silif_deploy.deploy.sequence_data import SEQUENCE_KINDS, write_digit_sequences
from silif_deploy.deploy.synthetic_data import KINDS, make_data

HELP = ("offline data: SHD-like spoken digits (.h5) or GSC-like words (.npz), synthesized with espeak-ng; or "
        "scikit-learn's digits as 64-step sequences (.npz)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True,
                   help="output folder (synth_shd_{train,test}.h5, synth_gsc.npz or digits_seq_{train,test}.npz)")
    p.add_argument("--kind", choices=(*KINDS, *SEQUENCE_KINDS), default="digits",
                   help="digits: 20 English + German digits as SHD-layout spikes; gsc: 35 GSC words as Kaldi fbank "
                        "features; sklearn-digits: scikit-learn's 8x8 digits as 64-step pixel sequences, 1 channel "
                        "(1437 train / 360 test; --seed picks the split; no synthesis)")
    p.add_argument("--speakers", type=int_at_least(2), default=24, help="number of synthetic speakers; the last 25%% are test")
    p.add_argument("--repetitions", type=positive_int, default=2, help="utterances of each word per speaker")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--no-flite", action="store_true", help="espeak-ng voices only, even when flite is installed")
    p.add_argument("--processes", type=positive_int, default=2, help="worker processes")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if args.kind in SEQUENCE_KINDS:
        paths = write_digit_sequences(args.out, seed=args.seed)
    else:
        paths = make_data(args.out, kind=args.kind, n_speakers=args.speakers, repetitions=args.repetitions,
                          seed=args.seed, use_flite=not args.no_flite, processes=args.processes)
    print(f"wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - start:.1f} s")
    return 0
