"""Offline stand-in data (``data.md`` §4): spoken words synthesized locally, in the real files' layouts.

Pipeline per utterance:

1. a **speaker** is (engine, voice, variant, base pitch 25–75, base speed 130–190 wpm); engines are
   espeak-ng (always) and flite (every 4th speaker, when installed): mixing engines matters, each
   engine alone is a domain of its own;
2. the utterance gets pitch ± 8, speed × 0.9–1.1, is resampled to 16 kHz, trimmed, normalized to
   −20 dBFS RMS, scaled by a gain of ± 6 dB, placed at a random onset inside a 1 s window, and
   white noise is added at 20–40 dB SNR;
3. ``digits``: an SHD-like cochlea turns it into spikes (:func:`cochlea_spikes`), written in SHD's
   exact HDF5 layout; ``gsc``: the Kaldi fbank features of the GSC reference (98 × 40).

Every utterance draws from its own ``SeedSequence([seed, index])``, so the output does not depend on
the process that rendered it: the same seed and espeak-ng / flite versions give identical arrays.
Speakers are disjoint between train and test (the last 25 % of speakers are test).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import h5py
import numpy as np
from scipy.signal import get_window, resample_poly
from tqdm import tqdm

from silif_deploy.converters.audio_features import SAMPLE_RATE, kaldi_fbank
from silif_deploy.converters.datasets import N_UNITS
from silif_deploy.converters.files import atomic_output, provenance
from silif_deploy.errors import SilifDeployError

DIGIT_KEYS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun",
)
"""SHD's class names (``extra/keys``): English digits 0–9, then German 0–9."""

GSC_WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)
"""The 35 GSC v2 words, sorted as the authors' labels are."""

KINDS = ("digits", "gsc")
DIGITS_FILES = ("synth_shd_train.h5", "synth_shd_test.h5")
GSC_FILE = "synth_gsc.npz"

ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc",
                 "en-gb-x-gbclan", "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "Andy", "Annie", "Alex", "Denis", "Gene",
                   "Lee", "Michael", "Mike", "adam", "ed", "john", "linda", "max", "paul", "rob",
                   "robert", "steph", "travis", "victor", "zac")
# kal (8 kHz) is left out: it would lack everything above 4 kHz.
FLITE_F0 = {"kal16": 105.0, "awb": 120.0, "rms": 100.0, "slt": 170.0}
"""Approximate natural F0 (Hz) of each flite voice, scaled by the speaker's pitch."""

_SPOKEN_GERMAN = {"fuenf": "fünf"}
# flite has English voices only; these spellings make them approximate the German words.
_FLITE_GERMAN = {"null": "nool", "eins": "ines", "zwei": "tsvy", "drei": "dry", "vier": "fear",
                 "fuenf": "foonf", "sechs": "zex", "sieben": "zeeben", "acht": "ahkt", "neun": "noin"}

ESPEAK_DEFAULT_WPM = 175.0
WINDOW_S = 1.0
TEST_FRACTION = 0.25
SPEECH_RMS_DBFS = -20.0

# Cochlea front end (data.md §4.2).
STFT_WINDOW = 256  # 16 ms
STFT_HOP = 16  # 1 ms
STFT_NFFT = 512
LOW_HZ, HIGH_HZ = 50.0, 7800.0
DYNAMIC_RANGE_DB = 45.0
TOP_DB = 22.0
"""Filter level (dB, STFT power scale) given the full rate: the median loudest band of 0 dB-gain
utterances (measured over both engines), giving ≈ 3,000 spikes per utterance like data.md §4.3.
A fixed reference, not a per-utterance maximum, so that the ± 6 dB gain changes the rates."""
MAX_RATE_HZ = 60.0
DT = 1e-3
JITTER_S = 1e-3


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: English ``voice`` (espeak-ng language or flite voice), espeak-ng variant."""

    engine: str
    voice: str
    variant: str
    pitch: float
    speed: float


def available_engines(use_flite: bool = True) -> tuple[str, ...]:
    """espeak-ng (required) and flite when installed and wanted."""
    if shutil.which("espeak-ng") is None:
        raise SilifDeployError("espeak-ng is not installed; install it: apt-get install espeak-ng")
    return ("espeak-ng", "flite") if use_flite and shutil.which("flite") else ("espeak-ng",)


def make_speakers(n: int, seed: int, engines: tuple[str, ...]) -> list[Speaker]:
    """``n`` speakers; every 4th one (index 3, 7, …) uses flite when it is among ``engines``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2**31]))  # apart from utterance seeds
    speakers = []
    for i in range(n):
        pitch, speed = round(float(rng.uniform(25, 75)), 1), round(float(rng.uniform(130, 190)), 1)
        if "flite" in engines and i % 4 == 3:
            speakers.append(Speaker("flite", str(rng.choice(list(FLITE_F0))), "", pitch, speed))
        else:
            speakers.append(Speaker("espeak-ng", str(rng.choice(ESPEAK_VOICES)),
                                    str(rng.choice(ESPEAK_VARIANTS)), pitch, speed))
    return speakers


def synthesize(word: str, speaker: Speaker, pitch: float, speed: float, german: bool = False) -> np.ndarray:
    """The 16 kHz waveform (float64, full scale 1) of ``word`` spoken by ``speaker``."""
    if speaker.engine == "flite":
        text = _FLITE_GERMAN[word] if german else word
        f0 = FLITE_F0[speaker.voice] * 2 ** ((pitch - 50.0) / 100.0)
        cmd = ["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={ESPEAK_DEFAULT_WPM / speed:.4f}",
               "--setf", f"int_f0_target_mean={f0:.1f}", "-t", text, "-o", "/dev/stdout"]
    else:
        voice = "de" if german else speaker.voice
        text = _SPOKEN_GERMAN.get(word, word)
        cmd = ["espeak-ng", "-v", f"{voice}+{speaker.variant}", "-p", str(round(pitch)),
               "-s", str(round(speed)), "--stdout", text]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0 or len(done.stdout) <= 44:
        raise SilifDeployError(f"{cmd[0]} failed on '{text}': {done.stderr.decode(errors='replace').strip()[:200]}")
    samples, rate = _parse_wav(done.stdout)
    g = math.gcd(SAMPLE_RATE, rate)
    return resample_poly(samples, SAMPLE_RATE // g, rate // g) if rate != SAMPLE_RATE else samples


def place_in_window(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trim, normalize to −20 dBFS RMS, apply ± 6 dB gain, put at a random onset in 1 s, add noise."""
    loud = np.flatnonzero(np.abs(speech) > 0.01 * np.abs(speech).max(initial=0))
    if loud.size == 0:
        raise SilifDeployError("the synthesizer returned silence; check the espeak-ng / flite installation")
    n = int(WINDOW_S * SAMPLE_RATE)
    speech = speech[loud[0]: loud[-1] + 1][:n]  # cutting is rare: only the slowest, longest words exceed 1 s
    gain_db = rng.uniform(-6.0, 6.0)
    speech = speech * 10 ** ((SPEECH_RMS_DBFS + gain_db) / 20) / np.sqrt(np.mean(speech**2))
    onset = int(rng.integers(0, n - len(speech) + 1))
    window = np.zeros(n)
    window[onset: onset + len(speech)] = speech
    noise_rms = np.sqrt(np.mean(speech**2)) * 10 ** (-rng.uniform(20.0, 40.0) / 20)
    return window + rng.normal(0.0, noise_rms, n)


@functools.lru_cache(maxsize=1)
def erb_filterbank() -> np.ndarray:
    """Gaussian power weights (STFT bins, 700): unit 0 is the lowest of 700 centres spaced uniformly
    on the ERB-rate scale E(f) = 21.4·log10(1 + 0.00437 f) from 50 Hz to 7.8 kHz, each with
    σ = ERB(f)/√(2π) (the area of a 1-ERB rectangle), ERB(f) = 24.7·(0.00437 f + 1)."""
    erb_rate = np.linspace(21.4 * np.log10(1 + 0.00437 * LOW_HZ), 21.4 * np.log10(1 + 0.00437 * HIGH_HZ), N_UNITS)
    centres = (10 ** (erb_rate / 21.4) - 1) / 0.00437
    bin_hz = SAMPLE_RATE / STFT_NFFT
    # Low ERBs (30 Hz at 50 Hz) are narrower than an FFT bin: the floor keeps those filters
    # interpolating between bins instead of falling between them (the 16 ms window resolves ≈ 60 Hz).
    sigma = np.maximum(24.7 * (0.00437 * centres + 1) / np.sqrt(2 * np.pi), bin_hz)
    freqs = np.arange(STFT_NFFT // 2 + 1) * bin_hz
    weights = np.exp(-0.5 * ((freqs[:, None] - centres[None, :]) / sigma[None, :]) ** 2)
    return weights / weights.sum(axis=0, keepdims=True)


def cochlea_spikes(wave: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """SHD-like spikes (times in s, float32, sorted; units uint16) of a 16 kHz waveform.

    Hann STFT (16 ms, 1 ms hop, nfft 512, frame k centred at k ms) → 700 ERB filters → level
    L = clip(dB − (TOP_DB − 45), 0, 45) → per 1 ms and unit a spike with probability
    60 Hz · 1 ms · (L/45)² → time k ms + uniform ± 1 ms jitter (negative times reflected).
    """
    padded = np.pad(wave, STFT_WINDOW // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, STFT_WINDOW)[::STFT_HOP][: len(wave) // STFT_HOP]
    power = np.abs(np.fft.rfft(frames * get_window("hann", STFT_WINDOW), n=STFT_NFFT, axis=1)) ** 2
    level_db = 10 * np.log10(power @ erb_filterbank() + 1e-20)
    level = np.clip(level_db - (TOP_DB - DYNAMIC_RANGE_DB), 0.0, DYNAMIC_RANGE_DB)
    p = MAX_RATE_HZ * DT * (level / DYNAMIC_RANGE_DB) ** 2
    frame, unit = np.nonzero(rng.random(p.shape) < p)
    times = np.abs(frame * DT + rng.uniform(-JITTER_S, JITTER_S, frame.size))
    order = np.argsort(times, kind="stable")
    return times[order].astype(np.float32), unit[order].astype(np.uint16)


@dataclass(frozen=True)
class _Job:
    index: int
    kind: str
    word: str
    german: bool
    speaker: Speaker
    seed: int


def _render(job: _Job):
    """One utterance: (times, units) for ``digits``, (98, 40) features for ``gsc``."""
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, job.index]))
    pitch = job.speaker.pitch + rng.uniform(-8.0, 8.0)
    speed = job.speaker.speed * rng.uniform(0.9, 1.1)
    wave = place_in_window(synthesize(job.word, job.speaker, pitch, speed, job.german), rng)
    return cochlea_spikes(wave, rng) if job.kind == "digits" else kaldi_fbank(wave)


def make_data(
    out_dir: str | os.PathLike,
    kind: str = "digits",
    n_speakers: int = 24,
    repetitions: int = 2,
    seed: int = 0,
    words: tuple[str, ...] | None = None,
    use_flite: bool = True,
    processes: int = 2,
) -> list[Path]:
    """Write the stand-in set of ``kind`` into ``out_dir`` and return the written paths.

    ``digits``: ``synth_shd_{train,test}.h5`` with SHD's layout (``spikes/times`` vlen float32,
    ``spikes/units`` vlen uint16, ``labels`` int64, ``extra/keys``, ``extra/speaker``) and the
    provenance plus the speaker table as file attributes. ``gsc``: ``synth_gsc.npz`` with ``x``
    (N, 98, 40) float32, ``labels``, ``class_names``, ``split`` ("train"/"test"), ``speakers`` and
    ``provenance`` (JSON). ``words`` restricts the spoken classes (default: all of them); the class
    names and label indices stay those of the full set.
    """
    if kind not in KINDS:
        raise SilifDeployError(f"unknown kind '{kind}'; use one of {', '.join(KINDS)}")
    if n_speakers < 2 or repetitions < 1:
        raise SilifDeployError(f"need at least 2 speakers and 1 repetition, got {n_speakers} and {repetitions}")
    if processes < 1:
        raise SilifDeployError(f"need at least 1 worker process, got {processes}")
    class_names = DIGIT_KEYS if kind == "digits" else GSC_WORDS
    words = class_names if words is None else tuple(words)
    unknown = [w for w in words if w not in class_names]
    if unknown:
        raise SilifDeployError(f"unknown {kind} word(s) {unknown}; choose from {', '.join(class_names)}")
    engines = available_engines(use_flite)
    speakers = make_speakers(n_speakers, seed, engines)
    plan = [(s, w) for s in range(n_speakers) for _ in range(repetitions) for w in words]
    jobs = [_Job(i, kind, w, kind == "digits" and class_names.index(w) >= 10, speakers[s], seed)
            for i, (s, w) in enumerate(plan)]
    with Pool(processes) as pool:
        rendered = list(tqdm(pool.imap(_render, jobs, chunksize=4), total=len(jobs),
                             desc=f"synthesizing {kind}", unit="utt"))
    labels = np.array([class_names.index(w) for _, w in plan], dtype=np.int64)
    speaker_ids = np.array([s for s, _ in plan], dtype=np.int64)
    is_test = speaker_ids >= n_speakers - max(1, round(TEST_FRACTION * n_speakers))
    record = provenance(kind=kind, seed=seed, engines=",".join(engines), engine_versions=_engine_versions(engines),
                        speakers_json=json.dumps([asdict(s) for s in speakers]))
    out_dir = Path(out_dir)
    if kind == "gsc":
        path = out_dir / GSC_FILE
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, x=np.stack(rendered), labels=labels, class_names=np.array(class_names),
                                split=np.where(is_test, "test", "train"), speakers=speaker_ids,
                                provenance=json.dumps(record))
        return [path]
    paths = []
    for name, rows in zip(DIGITS_FILES, (np.flatnonzero(~is_test), np.flatnonzero(is_test))):
        paths.append(out_dir / name)
        _write_shd_layout(paths[-1], [rendered[i] for i in rows], labels[rows], speaker_ids[rows],
                          class_names, record)
    return paths


def _write_shd_layout(path: Path, spikes: list[tuple[np.ndarray, np.ndarray]], labels: np.ndarray,
                      speakers: np.ndarray, class_names: tuple[str, ...], attrs: dict[str, object]) -> None:
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        times = f.create_dataset("spikes/times", (len(spikes),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(spikes),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(spikes):
            times[i], units[i] = t, u
        f.create_dataset("labels", data=labels)
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in class_names]))
        f.create_dataset("extra/speaker", data=speakers)
        f.attrs.update(attrs)


def _parse_wav(raw: bytes) -> tuple[np.ndarray, int]:
    """Mono int16 samples (as float, full scale 1) and the rate of a canonical 44-byte-header WAV.

    espeak-ng's stdout header carries a bogus length (it cannot seek back), so the samples are read
    from byte 44 to the end instead of trusting the header's sizes.
    """
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise SilifDeployError("the synthesizer did not return a WAV stream; check the espeak-ng / flite installation")
    rate = int.from_bytes(raw[24:28], "little")
    body = raw[44: 44 + (len(raw) - 44) // 2 * 2]
    return np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768.0, rate


def _engine_versions(engines: tuple[str, ...]) -> str:
    """The version line of each engine, e.g. "eSpeak NG text-to-speech: 1.51 …; version: flite-2.2-current …"."""
    found = []
    for engine in engines:
        out = subprocess.run([engine, "--version"], capture_output=True, text=True, check=False).stdout
        found.append(next((line.strip() for line in out.splitlines() if re.search(r"\d+\.\d+", line)), "unknown"))
    return "; ".join(found)
