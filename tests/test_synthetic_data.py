"""Offline stand-in data: SHD layout, speaker-disjoint splits, determinism; the cochlea on a pure tone."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest

from silif_deploy.converters.datasets import read_spike_h5
from silif_deploy.deploy import synthetic_data
from silif_deploy.deploy.cli import main
from silif_deploy.deploy.synthetic_data import DIGIT_KEYS, GSC_WORDS, cochlea_spikes, make_data
from silif_deploy.errors import SilifDeployError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")
WORDS = ("one", "sieben", "fuenf")  # English, and German with the umlaut the synthesizer must get


def test_pure_tone_excites_the_units_tuned_to_it():
    # ERB-rate E(f) = 21.4·log10(1 + 0.00437 f): E(50) = 1.836, E(1000) = 15.62, E(7800) = 33.06,
    # so 1 kHz sits at unit (15.62 − 1.836) / (33.06 − 1.836) · 699 ≈ 308.6
    t = np.arange(16000) / 16000
    times, units = cochlea_spikes(0.3 * np.sin(2 * np.pi * 1000 * t), np.random.default_rng(0))
    assert times.dtype == np.float32 and units.dtype == np.uint16
    assert (np.diff(times) >= 0).all() and times.min() >= 0 and times.max() <= 1.001
    assert abs(np.median(units) - 308.6) <= 2
    per_unit = np.bincount(units, minlength=700)
    # a saturated unit fires with p = 60 Hz · 1 ms per ms: ≈ 60 spikes in 1 s (binomial sd ≈ 7.5)
    assert 35 <= per_unit[305:312].mean() <= 85
    assert per_unit[:200].sum() + per_unit[450:].sum() < 0.02 * per_unit.sum()


def test_missing_espeak_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(synthetic_data.shutil, "which", lambda name: None)
    with pytest.raises(SilifDeployError, match=r"^espeak-ng is not installed; install it: apt-get install espeak-ng$"):
        make_data(tmp_path, n_speakers=2, repetitions=1)


def test_bad_requests(tmp_path):
    with pytest.raises(SilifDeployError, match="unknown kind 'tidigits'"):
        make_data(tmp_path, kind="tidigits")
    with pytest.raises(SilifDeployError, match="at least 2 speakers"):
        make_data(tmp_path, n_speakers=1)
    with pytest.raises(SilifDeployError, match=r"unknown digits word\(s\) \['fünf'\]"):
        make_data(tmp_path, words=("fünf",))


@needs_espeak
def test_digits_layout_split_and_determinism(tmp_path):
    first = make_data(tmp_path / "a", n_speakers=4, repetitions=1, seed=3, words=WORDS)
    again = make_data(tmp_path / "b", n_speakers=4, repetitions=1, seed=3, words=WORDS)
    other = make_data(tmp_path / "c", n_speakers=4, repetitions=1, seed=4, words=WORDS)
    assert [p.name for p in first] == ["synth_shd_train.h5", "synth_shd_test.h5"]
    with h5py.File(first[0], "r") as train, h5py.File(first[1], "r") as test:
        assert train["spikes/times"].dtype.metadata["vlen"] == np.float32
        assert train["spikes/units"].dtype.metadata["vlen"] == np.uint16
        assert [k.decode() for k in train["extra/keys"][()]] == list(DIGIT_KEYS)
        # 4 speakers: the last 25 % (speaker 3) is test; 3 words each
        assert train["extra/speaker"][()].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert test["extra/speaker"][()].tolist() == [3, 3, 3]
        assert train["labels"][()].tolist() == [1, 17, 15] * 3
        assert len(train["spikes/times"]) == 9 and len(test["spikes/times"]) == 3
        speakers = json.loads(train.attrs["speakers_json"])
        assert len(speakers) == 4 and train.attrs["seed"] == 3
        for row in range(9):
            t, u = train["spikes/times"][row], train["spikes/units"][row]
            assert len(t) == len(u) > 300 and u.max() < 700 and 0 <= t.min() and t.max() < 1.01
    for a, b, c in zip(first, again, other):
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb, h5py.File(c, "r") as fc:
            for row in range(len(fa["labels"])):
                np.testing.assert_array_equal(fa["spikes/times"][row], fb["spikes/times"][row])
                np.testing.assert_array_equal(fa["spikes/units"][row], fb["spikes/units"][row])
            assert not np.array_equal(fa["spikes/times"][0], fc["spikes/times"][0])
    binned = read_spike_h5(first[0], 100, 1.0)
    assert binned.x.shape == (9, 100, 140) and binned.class_names == list(DIGIT_KEYS)


@needs_espeak
def test_gsc_kind_and_cli(tmp_path, capsys):
    assert main(["make-data", "--out", str(tmp_path), "--kind", "gsc", "--speakers", "2",
                 "--repetitions", "1", "--seed", "1", "--no-flite"]) == 0
    assert "synth_gsc.npz" in capsys.readouterr().out
    with np.load(tmp_path / "synth_gsc.npz") as d:
        assert d["x"].shape == (70, 98, 40) and d["x"].dtype == np.float32
        assert d["class_names"].tolist() == list(GSC_WORDS)
        assert d["labels"].tolist() == list(range(35)) * 2
        assert d["split"].tolist() == ["train"] * 35 + ["test"] * 35
        assert np.isfinite(d["x"]).all() and d["x"].max() > math.log(1e-7)
        assert json.loads(str(d["provenance"]))["engines"] == "espeak-ng"
