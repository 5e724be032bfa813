"""SHD/SSC reader and ``load_input``: hand-computed binning on tiny files in SHD's layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from silif_deploy.converters.datasets import (
    BINNING,
    binning_preset,
    infer_binning,
    load_input,
    open_input,
    read_spike_h5,
)
from silif_deploy.errors import SilifDeployError

from conftest import golden_path

# Grid of (nb_steps=5, max_time=1.0): 0, 0.25, 0.5, 0.75, 1.0, so step k holds [0.25(k-1), 0.25k).
ROWS = [
    # t = 0 -> step 1; 0.1 -> 1; 0.25 (on a grid point) -> 2; 0.26 -> 2; 0.9 -> 4; 1.0 and 1.5 dropped
    (np.array([0.0, 0.1, 0.25, 0.26, 0.9, 1.0, 1.5]), np.array([0, 4, 5, 5, 699, 3, 10])),
    (np.array([]), np.array([])),  # an empty utterance
    (np.array([0.5, 0.5, 0.5, 0.74]), np.array([7, 7, 9, 695])),  # duplicates add up
]
LABELS = [2, 0, 1]
KEYS = ["null", "eins", "zwei"]  # not sorted: the reader must keep the file's order
SPEAKERS = [3, 3, 7]


def write_shd_like(path: Path, rows, time_dtype=np.float32, keys=KEYS, labels=LABELS, speakers=SPEAKERS) -> Path:
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(rows),), dtype=h5py.vlen_dtype(time_dtype))
        units = f.create_dataset("spikes/units", (len(rows),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(rows):
            times[i] = t.astype(time_dtype)
            units[i] = u.astype(np.uint16)
        f.create_dataset("labels", data=np.array(labels, dtype=np.uint8))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        f.create_dataset("extra/speaker", data=np.array(speakers, dtype=np.uint16))
    return path


def expected_tiny(spatial_bin: int) -> np.ndarray:
    """The binning of ROWS written out by hand (channel = unit // spatial_bin)."""
    x = np.zeros((3, 5, 700 // spatial_bin), dtype=np.int64)
    for unit in (0, 4):
        x[0, 1, unit // spatial_bin] += 1
    x[0, 2, 5 // spatial_bin] += 2
    x[0, 4, 699 // spatial_bin] += 1
    x[2, 3, 7 // spatial_bin] += 2
    x[2, 3, 9 // spatial_bin] += 1
    x[2, 3, 695 // spatial_bin] += 1
    return x


@pytest.mark.parametrize("time_dtype", [np.float16, np.float32])
def test_tiny_file_binned_by_hand(tmp_path, time_dtype):
    data = read_spike_h5(write_shd_like(tmp_path / "shd_test.h5", ROWS, time_dtype), nb_steps=5, max_time=1.0)
    expected = expected_tiny(5)
    assert data.x.shape == (3, 5, 140)
    assert data.x.dtype == np.uint8
    np.testing.assert_array_equal(data.x, expected)
    # readable pins of the same array: t = 0 lands in step 1, step 0 stays empty, unit 699 -> 139
    assert data.x[0, 1, 0] == 2 and data.x[0, 2, 1] == 2 and data.x[0, 4, 139] == 1
    assert data.x[:, 0].sum() == 0
    assert data.x[1].sum() == 0
    assert data.x[2, 3, 1] == 3 and data.x[2, 3, 139] == 1
    assert data.dropped_events == 2
    assert data.labels.dtype == np.int64 and data.labels.tolist() == LABELS
    assert data.class_names == KEYS
    assert data.speakers.tolist() == SPEAKERS


@pytest.mark.parametrize("spatial_bin, channel_of_699", [(1, 699), (7, 99), (10, 69)])
def test_spatial_pooling(tmp_path, spatial_bin, channel_of_699):
    data = read_spike_h5(write_shd_like(tmp_path / "shd.h5", ROWS), 5, 1.0, spatial_bin=spatial_bin)
    assert data.x.shape == (3, 5, 700 // spatial_bin)
    np.testing.assert_array_equal(data.x, expected_tiny(spatial_bin))
    assert data.x[0, 4, channel_of_699] == 1


def test_counts_widen_beyond_uint8(tmp_path):
    rows = [(np.full(300, 0.3), np.full(300, 12))]
    data = read_spike_h5(write_shd_like(tmp_path / "shd.h5", rows, labels=[0], speakers=[0]), 5, 1.0)
    assert data.x.dtype == np.int16
    assert data.x[0, 2, 2] == 300


def _loop_reference(rows, nb_steps, max_time):
    """Per-event search for grid[k-1] <= t < grid[k] in float64, as numpy.digitize defines it."""
    grid = np.linspace(0.0, max_time, nb_steps)  # the reference's own grid, rounding included
    x = np.zeros((len(rows), nb_steps, 140), dtype=np.int64)
    dropped = 0
    for r, (times, units) in enumerate(rows):
        for t, u in zip(times.astype(np.float64), units):
            k = next((k for k in range(1, nb_steps) if grid[k - 1] <= t < grid[k]), None)
            if k is None:
                dropped += 1
            else:
                x[r, k, u // 5] += 1
    return x, dropped


def test_float32_events_near_grid_points_follow_the_float64_grid(tmp_path):
    nb_steps, max_time = BINNING["shd"]
    grid = np.linspace(0.0, max_time, nb_steps)
    # float32 neighbours of grid points fall on either side of the float64 boundary
    t = np.concatenate([grid[1:-1].astype(np.float32), np.nextafter(grid[1:-1].astype(np.float32), 0)])
    rng = np.random.default_rng(1)
    rows = [(t, rng.integers(0, 700, t.size)), (rng.uniform(0, 1.2, 500).astype(np.float32), rng.integers(0, 700, 500))]
    path = write_shd_like(tmp_path / "shd.h5", rows, labels=[0, 1], speakers=[0, 0])
    data = read_spike_h5(path, nb_steps, max_time)
    expected, dropped = _loop_reference([(tt.astype(np.float32), u) for tt, u in rows], nb_steps, max_time)
    np.testing.assert_array_equal(data.x, expected)
    assert data.dropped_events == dropped > 0


def test_presets_and_inference():
    assert binning_preset("SHD") == (250, 1.0)
    assert binning_preset("ssc") == (300, 1.2)
    assert binning_preset("ssc10") == (100, 1.0)
    assert infer_binning("/data/ssc_valid.h5") == (300, 1.2)
    assert infer_binning("/data/shd_train.h5") == (250, 1.0)
    assert infer_binning("synth_shd_test.h5") == (250, 1.0)
    with pytest.raises(SilifDeployError, match="unknown binning 'tidigits'.*shd, ssc, ssc10"):
        binning_preset("tidigits")


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(SilifDeployError, match="does not exist.*Zenke lab"):
        read_spike_h5(tmp_path / "shd_train.h5", 250, 1.0)


def test_not_hdf5(tmp_path):
    bad = tmp_path / "shd_train.h5"
    bad.write_text("not really")
    with pytest.raises(SilifDeployError, match="is not an HDF5 file"):
        read_spike_h5(bad, 250, 1.0)


def test_missing_groups(tmp_path):
    path = tmp_path / "shd_train.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=np.zeros(2))
        f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float32))
    with pytest.raises(SilifDeployError, match="lacks spikes/units: not an SHD/SSC file"):
        read_spike_h5(path, 250, 1.0)


def test_bad_units_and_spatial_bin(tmp_path):
    path = write_shd_like(tmp_path / "shd.h5", [(np.array([0.1]), np.array([700]))], labels=[0], speakers=[0])
    with pytest.raises(SilifDeployError, match="unit 700 outside 0…699"):
        read_spike_h5(path, 5, 1.0)
    with pytest.raises(SilifDeployError, match="spatial_bin must divide 700.*got 3"):
        read_spike_h5(path, 5, 1.0, spatial_bin=3)


def test_load_input_h5_uses_presets(tmp_path):
    ssc = load_input(write_shd_like(tmp_path / "ssc_test.h5", ROWS))
    assert ssc.x.shape == (3, 300, 140)
    shd = load_input(write_shd_like(tmp_path / "shd_test.h5", ROWS))
    assert shd.x.shape == (3, 250, 140)
    ten = load_input(tmp_path / "ssc_test.h5", binning="ssc10")
    assert ten.x.shape == (3, 100, 140)
    custom = load_input(tmp_path / "shd_test.h5", n_channels=140, binning=(5, 1.0))
    np.testing.assert_array_equal(custom.x, expected_tiny(5))
    assert custom.is_counts and custom.labels.tolist() == LABELS and custom.class_names == KEYS
    assert len(custom.source_sha256) == 64


def test_load_input_npy(tmp_path):
    counts = np.zeros((2, 10, 140), dtype=np.float32)
    counts[0, 3, 5] = 2.0
    np.save(tmp_path / "counts.npy", counts)
    data = load_input(tmp_path / "counts.npy", n_channels=140)
    assert data.is_counts and data.labels is None and data.x.shape == (2, 10, 140)
    np.save(tmp_path / "features.npy", np.full((1, 98, 40), -4.5))
    assert not load_input(tmp_path / "features.npy").is_counts
    np.save(tmp_path / "half.npy", np.full((1, 5, 40), 0.5))
    assert not load_input(tmp_path / "half.npy").is_counts


@pytest.mark.parametrize("array, n_channels, message", [
    (np.array([[[0.0, np.nan]]]), None, "contains NaN or infinite values"),
    (np.array([[[0.0, np.inf]]]), None, "contains NaN or infinite values"),
    (np.zeros((10, 140)), None, r"shape \(10, 140\); expected 3 dimensions"),
    (np.zeros((1, 10, 700)), 140, "has 700 channels but the model expects 140"),
])
def test_load_input_refuses_bad_npy(tmp_path, array, n_channels, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(SilifDeployError, match=message):
        load_input(tmp_path / "bad.npy", n_channels=n_channels)


def test_load_input_npz_keys(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.ones((2, 4, 3), dtype=np.int16), labels=np.array([1, 0]),
             class_names=np.array(["a", "b"]))
    data = load_input(tmp_path / "x.npz")
    assert data.x.dtype == np.int16 and data.is_counts
    assert data.labels.tolist() == [1, 0] and data.class_names == ["a", "b"]
    np.savez(tmp_path / "other.npz", spikes=np.ones((2, 4, 3)))
    with pytest.raises(SilifDeployError, match="no array 'input' or 'x' .*spikes"):
        load_input(tmp_path / "other.npz")


def test_load_input_golden_file():
    path = golden_path("silif")
    if not path.exists():
        pytest.skip(f"golden file {path} not present")
    data = load_input(path, n_channels=140)
    assert data.x.shape == (4, 300, 140) and data.x.dtype == np.int16
    assert data.is_counts and data.labels is None


def test_load_input_unknown_or_missing(tmp_path):
    with pytest.raises(SilifDeployError, match="does not exist"):
        load_input(tmp_path / "nope.npy")
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(SilifDeployError, match="unknown type"):
        load_input(tmp_path / "a.csv")


def test_opening_an_npz_reads_no_sample(tmp_path):
    """Opening a 16.8 MB ``.npz`` input reads its header and labels only (numpy's allocations, traced):
    the samples arrive chunk by chunk, so memory does not grow with the file. (Opening it once
    loaded the whole array: 848 MiB peak for 20,000 SSC-like samples.)"""
    import tracemalloc

    path = tmp_path / "big.npz"
    np.savez(path, x=np.ones((400, 300, 140), np.uint8), labels=np.zeros(400, np.int64))
    tracemalloc.start()
    try:
        source = open_input(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(source) == 400 and peak < 1 << 20, f"opening allocated {peak:,} bytes"
    first = next(iter(source.batches(32)))
    assert first[0].shape == (32, 300, 140) and int(first[0].sum()) == 32 * 300 * 140
