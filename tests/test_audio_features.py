"""Kaldi fbank re-implementation against a straightforward per-frame Kaldi computation, and the GSC reader."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.io import wavfile

from silif_deploy.converters.audio_features import kaldi_fbank, read_gsc_folder
from silif_deploy.errors import SilifDeployError

LOG_FLOAT32_EPS = -15.942385152878742  # ln(2**-23): the floor of an all-zero frame


def kaldi_by_hand(wave: np.ndarray) -> np.ndarray:
    """Kaldi's ComputeFeatures for fbank, frame by frame with plain loops (feature-window.cc, mel-computations.cc)."""
    sr, frame_len, shift, nfft, n_mel = 16000, 400, 160, 512, 40
    window = [(0.5 - 0.5 * math.cos(2 * math.pi * n / (frame_len - 1))) ** 0.85 for n in range(frame_len)]

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    mel_low, mel_high = mel(20.0), mel(sr / 2)
    delta = (mel_high - mel_low) / (n_mel + 1)
    banks = []
    for b in range(n_mel):
        left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
        weights = {}
        for i in range(nfft // 2):
            m = mel(i * sr / nfft)
            if left < m < right:
                weights[i] = (m - left) / (center - left) if m <= center else (right - m) / (right - center)
        banks.append(weights)

    n_frames = 1 + (len(wave) - frame_len) // shift
    out = np.zeros((n_frames, n_mel))
    n = np.arange(nfft)
    for f in range(n_frames):
        frame = [float(v) for v in wave[f * shift: f * shift + frame_len]]
        mean = sum(frame) / frame_len
        frame = [v - mean for v in frame]
        for i in range(frame_len - 1, 0, -1):
            frame[i] -= 0.97 * frame[i - 1]
        frame[0] -= 0.97 * frame[0]
        padded = np.array([v * w for v, w in zip(frame, window)] + [0.0] * (nfft - frame_len))
        power = []
        for k in range(nfft // 2 + 1):  # the DFT sum of each bin, written out
            re = np.dot(padded, np.cos(2 * np.pi * k * n / nfft))
            im = np.dot(padded, np.sin(2 * np.pi * k * n / nfft))
            power.append(re * re + im * im)
        for b, weights in enumerate(banks):
            energy = sum(w * power[i] for i, w in weights.items())
            out[f, b] = math.log(max(energy, 1.1920928955078125e-07))
    return out


def test_one_second_gives_98_by_40():
    t = np.arange(16000) / 16000
    assert kaldi_fbank(0.3 * np.sin(2 * np.pi * 440 * t)).shape == (98, 40)


@pytest.mark.parametrize("n_samples, n_frames", [(400, 1), (559, 1), (560, 2), (8000, 48), (16000, 98), (16079, 98), (16080, 99)])
def test_snip_edges_frame_count(n_samples, n_frames):
    assert kaldi_fbank(np.random.default_rng(0).uniform(-0.1, 0.1, n_samples)).shape == (n_frames, 40)


def test_matches_hand_written_kaldi_on_a_short_chirp_plus_noise():
    rng = np.random.default_rng(3)
    t = np.arange(880) / 16000  # 4 frames
    wave = 0.4 * np.sin(2 * np.pi * (300 * t + 9000 * t**2)) + 0.05 + rng.normal(0, 0.01, t.size)
    got = kaldi_fbank(wave)
    assert got.dtype == np.float32 and got.shape == (4, 40)
    np.testing.assert_allclose(got, kaldi_by_hand(wave), rtol=0, atol=2e-5)


def test_sine_peaks_in_the_filter_centred_near_it():
    # mel(1 kHz) = 1000.0; centres are 31.75 + (b + 1)·68.49 mel, the nearest is b = 13 (990.7 mel)
    t = np.arange(16000) / 16000
    feats = kaldi_fbank(0.5 * np.sin(2 * np.pi * 1000 * t))
    assert (feats.argmax(axis=1) == 13).all()


def test_constant_signal_is_all_floor():
    # the per-frame DC removal leaves zeros, so every energy is floored at float32 eps
    np.testing.assert_allclose(kaldi_fbank(np.full(1600, 0.25)), LOG_FLOAT32_EPS, rtol=0, atol=1e-6)


def test_unit_scale_is_int16_scale_minus_ln_32768_squared():
    wave = np.random.default_rng(5).uniform(-0.5, 0.5, 4000)
    diff = kaldi_fbank(wave * 32768.0) - kaldi_fbank(wave)
    np.testing.assert_allclose(diff, 2 * math.log(32768.0), atol=2e-5)


def test_bad_waveforms():
    with pytest.raises(SilifDeployError, match="shorter than one 25 ms frame"):
        kaldi_fbank(np.zeros(399))
    with pytest.raises(SilifDeployError, match="expects 16000 Hz"):
        kaldi_fbank(np.zeros(8000), sample_rate=8000)
    with pytest.raises(SilifDeployError, match="1-D mono"):
        kaldi_fbank(np.zeros((2, 8000)))


@pytest.fixture
def gsc_root(tmp_path):
    rng = np.random.default_rng(0)
    clips = {"yes/a.wav": 16000, "yes/b.wav": 8000, "no/a.wav": 16000, "no/c.wav": 12000,
             "_background_noise_/white.wav": 32000}
    for rel, n in clips.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        wavfile.write(tmp_path / rel, 16000, (rng.uniform(-0.3, 0.3, n) * 32768).astype(np.int16))
    (tmp_path / "validation_list.txt").write_text("no/a.wav\n")
    (tmp_path / "testing_list.txt").write_text("yes/b.wav\n")
    return tmp_path


def test_gsc_folder_labels_splits_and_padding(gsc_root):
    data = read_gsc_folder(gsc_root)
    assert data.class_names == ["no", "yes"]
    assert data.files == ["no/a.wav", "no/c.wav", "yes/a.wav", "yes/b.wav"]
    assert data.labels.tolist() == [0, 0, 1, 1]
    assert data.split.tolist() == ["validation", "train", "train", "test"]
    assert data.x.shape == (4, 98, 40) and data.x.dtype == np.float32
    # yes/b.wav lasts 0.5 s: frames starting at 160·f >= 8000 (f >= 50) see only the zero padding
    np.testing.assert_allclose(data.x[3, 50:], LOG_FLOAT32_EPS, atol=1e-6)
    assert (data.x[3, :49] > LOG_FLOAT32_EPS + 1).all()
    _, raw = wavfile.read(gsc_root / "yes/b.wav")
    np.testing.assert_allclose(data.x[3], kaldi_fbank(np.concatenate([raw / 32768.0, np.zeros(8000)])), atol=1e-6)


def test_gsc_folder_split_selection_and_errors(gsc_root, tmp_path_factory):
    assert read_gsc_folder(gsc_root, splits=("test",)).files == ["yes/b.wav"]
    with pytest.raises(SilifDeployError, match="unknown GSC split"):
        read_gsc_folder(gsc_root, splits=("valid",))
    with pytest.raises(SilifDeployError, match="does not exist; extract the Google Speech Commands"):
        read_gsc_folder(gsc_root / "missing")
    (gsc_root / "testing_list.txt").unlink()
    with pytest.raises(SilifDeployError, match="testing_list.txt' is missing"):
        read_gsc_folder(gsc_root)
    other = tmp_path_factory.mktemp("gsc8k")
    (other / "up").mkdir()
    wavfile.write(other / "up" / "x.wav", 8000, np.zeros(8000, dtype=np.int16))
    (other / "validation_list.txt").write_text("")
    (other / "testing_list.txt").write_text("")
    with pytest.raises(SilifDeployError, match="sampled at 8000 Hz"):
        read_gsc_folder(other)
