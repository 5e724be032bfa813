"""The sequence-style task from data a package ships: scikit-learn's ``load_digits`` as 64-step sequences.

``load_digits()`` (spec ``spiking_ssm.md`` §12) is 1,797 handwritten digits of 8 × 8 pixels, values
0 … 16, inside the scikit-learn wheel: nothing is downloaded. Each image becomes one sequence read
in raster order (row by row, left to right), one pixel per step::

    x[sample, t, 0] = image[sample, t // 8, t % 8]      t = 0 … 63;  d_input = 1

The pixels stay integers (``uint8``, 0 … 16), so every engine reads them as event counts and the
fixed-point encoder receives them exactly. The split is scikit-learn's stratified
``train_test_split`` (``test_size`` 0.2, ``random_state`` = the seed): 1,437 train / 360 test.
:func:`write_digit_sequences` writes ``digits_seq_train.npz`` and ``digits_seq_test.npz``, each with
``x`` (batch, 64, 1), ``labels``, ``class_names`` and ``provenance`` (JSON), the layout
``converters.datasets.open_input`` reads for every command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from silif_deploy.converters.files import atomic_output, provenance
from silif_deploy.errors import SilifDeployError

SEQUENCE_KINDS = ("sklearn-digits",)
"""``make-data --kind`` values this module writes (the synthesized kinds are ``synthetic_data.KINDS``)."""
DIGIT_SEQUENCE_FILES = ("digits_seq_train.npz", "digits_seq_test.npz")
TEST_FRACTION = 0.2
STEPS = 64


class SequenceSplit(NamedTuple):
    """Train and test sequences: ``x_*`` (batch, time, channels) uint8, ``y_*`` int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


def digit_sequences(seed: int = 0) -> SequenceSplit:
    """``load_digits`` as (batch, 64, 1) pixel sequences, split 1,437 / 360 (stratified, seeded)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise SilifDeployError(
            "the sklearn-digits data set needs scikit-learn, which is not installed here: "
            "pip install 'silif-deploy[torch]'"
        ) from None
    digits = load_digits()
    x = digits.images.reshape(len(digits.images), STEPS, 1).astype(np.uint8)  # raster order: row by row
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    return SequenceSplit(x_train, y_train, x_test, y_test, tuple(str(int(c)) for c in digits.target_names))


def write_digit_sequences(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    """Write ``digits_seq_{train,test}.npz`` into ``out_dir`` (module docstring); return their paths."""
    split = digit_sequences(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = json.dumps(provenance(kind="sklearn-digits", seed=seed, source="sklearn.datasets.load_digits",
                                   layout="raster order, one pixel per step, values 0-16"))
    paths = []
    for name, x, y in zip(DIGIT_SEQUENCE_FILES, (split.x_train, split.x_test), (split.y_train, split.y_test)):
        path = out / name
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, x=x, labels=y, class_names=np.array(split.class_names), provenance=record)
        paths.append(path)
    return paths
