"""GSC features: a numpy re-implementation of ``torchaudio.compliance.kaldi.fbank(w, num_mel_bins=40)``.

Per frame of 25 ms (400 samples at 16 kHz), shifted by 10 ms, ``snip_edges`` (only whole frames:
1 + (n - 400) // 160 frames, so 98 for 1 s):

1. remove the DC offset: x ← x − mean(x) (dither is 0);
2. pre-emphasis, Kaldi's way: x[i] ← x[i] − 0.97·x[i−1] for i ≥ 1, and x[0] ← x[0] − 0.97·x[0];
3. Povey window: w[n] = (0.5 − 0.5·cos(2πn/(N−1)))^0.85;
4. zero-pad to 512 and take the power spectrum |FFT|² (257 bins);
5. 40 triangular filters, equally spaced on the Kaldi mel scale m(f) = 1127·ln(1 + f/700) between
   20 Hz and Nyquist; filter k rises from mel_lo + kΔ to mel_lo + (k+1)Δ and falls to
   mel_lo + (k+2)Δ (Δ = (mel_hi − mel_lo)/41), evaluated at the mel value of each FFT bin
   centre i·16000/512 for i < 256 (the Nyquist bin gets weight 0);
6. ln(max(E, ε)) with ε = float32 machine epsilon; no energy coefficient.

The waveform is in [−1, 1) as ``torchaudio.load`` gives it, so every unfloored value is Kaldi's
(int16-scale) value minus ln(32768²).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from tqdm import tqdm

from silif_deploy.errors import SilifDeployError

SAMPLE_RATE = 16000
FRAME_LENGTH = 400
FRAME_SHIFT = 160
PADDED_LENGTH = 512
PREEMPHASIS = 0.97
LOW_FREQ = 20.0
GSC_FRAMES = 98
"""Frames of a 1 s clip: 1 + (16000 − 400) // 160."""

GSC_SPLITS = ("train", "validation", "test")
GSC_DOWNLOAD_HINT = (
    "extract the Google Speech Commands v0.02 archive (speech_commands_v0.02.tar.gz, from the "
    "TensorFlow datasets / Google download page) there"
)
_FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass
class GSCDataset:
    """A GSC v2 extraction as features ``x`` (N, 98, 40) float32 with labels and splits."""

    x: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    split: np.ndarray
    files: list[str]


def kaldi_mel(freq: np.ndarray | float) -> np.ndarray:
    """Kaldi's mel scale 1127·ln(1 + f/700)."""
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


def mel_filterbank(num_mel_bins: int = 40, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular filter weights (num_mel_bins, PADDED_LENGTH // 2 + 1), step 5 of the module docstring."""
    mel_lo, mel_hi = kaldi_mel(LOW_FREQ), kaldi_mel(sample_rate / 2)
    delta = (mel_hi - mel_lo) / (num_mel_bins + 1)
    left = mel_lo + delta * np.arange(num_mel_bins)[:, None]
    mel = kaldi_mel(np.arange(PADDED_LENGTH // 2) * sample_rate / PADDED_LENGTH)[None, :]
    up = (mel - left) / delta
    down = (left + 2 * delta - mel) / delta
    weights = np.maximum(0.0, np.minimum(up, down))
    return np.pad(weights, ((0, 0), (0, 1)))  # the Nyquist bin is outside every Kaldi filter


def povey_window(length: int = FRAME_LENGTH) -> np.ndarray:
    """(0.5 − 0.5·cos(2πn/(N−1)))^0.85: a symmetric Hann window raised to 0.85."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1))) ** 0.85


def kaldi_fbank(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, num_mel_bins: int = 40) -> np.ndarray:
    """Log-mel filterbank (frames, num_mel_bins) float32 of a mono waveform in [−1, 1) (module docstring)."""
    if sample_rate != SAMPLE_RATE:
        raise SilifDeployError(f"kaldi_fbank expects {SAMPLE_RATE} Hz audio (the GSC rate), got {sample_rate} Hz; resample first")
    w = np.asarray(waveform, dtype=np.float64)
    if w.ndim != 1:
        raise SilifDeployError(f"kaldi_fbank expects a 1-D mono waveform, got shape {w.shape}")
    if len(w) < FRAME_LENGTH:
        raise SilifDeployError(f"waveform of {len(w)} samples is shorter than one 25 ms frame ({FRAME_LENGTH})")
    n_frames = 1 + (len(w) - FRAME_LENGTH) // FRAME_SHIFT
    frames = np.lib.stride_tricks.sliding_window_view(w, FRAME_LENGTH)[::FRAME_SHIFT][:n_frames]
    frames = frames - frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)  # x[-1] := x[0], as Kaldi
    frames = (frames - PREEMPHASIS * previous) * povey_window()
    power = np.abs(np.fft.rfft(frames, n=PADDED_LENGTH, axis=1)) ** 2
    energies = power @ mel_filterbank(num_mel_bins, sample_rate).T
    return np.log(np.maximum(energies, _FLOAT32_EPS)).astype(np.float32)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A mono WAV as float64 in [−1, 1) (int16 / 32768, as ``torchaudio.load``) and its rate."""
    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError) as err:
        raise SilifDeployError(f"cannot read WAV '{path}' ({err})") from None
    if data.ndim != 1:
        raise SilifDeployError(f"WAV '{path}' has {data.shape[1]} channels; GSC clips are mono")
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0, rate
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float64) / -float(np.iinfo(data.dtype).min), rate
    return data.astype(np.float64), rate


def read_gsc_folder(root: str | os.PathLike, splits: tuple[str, ...] = GSC_SPLITS) -> GSCDataset:
    """Read a GSC v2 extraction into Kaldi fbank features, one clip per row.

    Labels index the sorted class folders (``_background_noise_`` excluded); a clip is in
    ``validation`` or ``test`` when listed in ``validation_list.txt`` / ``testing_list.txt``, else in
    ``train``. Every clip is zero-padded (or cut) to exactly 1 s = 98 frames, so a clip's features
    never depend on its batch (the authors pad to the longest clip of each batch instead,
    ``neurons.md`` §13.2).
    """
    root = Path(root)
    unknown = set(splits) - set(GSC_SPLITS)
    if unknown:
        raise SilifDeployError(f"unknown GSC split(s) {sorted(unknown)}; use {', '.join(GSC_SPLITS)}")
    if not root.is_dir():
        raise SilifDeployError(f"GSC folder '{root}' does not exist; {GSC_DOWNLOAD_HINT}")
    listed = {name: _read_list(root / f"{name}_list.txt") for name in ("validation", "testing")}
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "_background_noise_")
    if not class_names:
        raise SilifDeployError(f"'{root}' has no class folders; {GSC_DOWNLOAD_HINT}")
    items = []
    for label, name in enumerate(class_names):
        for wav in sorted((root / name).glob("*.wav")):
            rel = f"{name}/{wav.name}"
            split = "validation" if rel in listed["validation"] else "test" if rel in listed["testing"] else "train"
            if split in splits:
                items.append((rel, label, split))
    x = np.zeros((len(items), GSC_FRAMES, 40), dtype=np.float32)
    for i, (rel, _, _) in enumerate(tqdm(items, desc="GSC features", unit="clip", disable=len(items) < 1000)):
        wave, rate = read_wav(root / rel)
        if rate != SAMPLE_RATE:
            raise SilifDeployError(f"'{root / rel}' is sampled at {rate} Hz; GSC clips are {SAMPLE_RATE} Hz")
        x[i] = kaldi_fbank(pad_to_one_second(wave))
    return GSCDataset(
        x=x, labels=np.array([it[1] for it in items], dtype=np.int64), class_names=class_names,
        split=np.array([it[2] for it in items]), files=[it[0] for it in items],
    )


def pad_to_one_second(wave: np.ndarray) -> np.ndarray:
    """Zero-pad (or cut) a 16 kHz waveform to exactly 16000 samples."""
    out = np.zeros(SAMPLE_RATE, dtype=np.float64)
    out[: min(len(wave), SAMPLE_RATE)] = wave[:SAMPLE_RATE]
    return out


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise SilifDeployError(f"'{path}' is missing; the GSC v2 extraction holds it next to the class folders")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}
