"""tonic 1.7.0's own transforms reproduce our SHD/SSC binning (``converters/datasets.py``), on a
generated file in the SHD layout read by tonic's own ``datasets.SHD`` (docs/tonic.md).

* Events with float microsecond times: ``Downsample(spatial_factor=0.2)`` + ``ToFrame(sensor_size=
  (140, 1, 1), time_window=1e6·max_time/(nb_steps − 1), start_time=0, end_time=1e6·max_time,
  include_incomplete=True)`` equals our counts bit for bit, one step later (our step 0 is empty).
* ``tonic.datasets.SHD`` casts times to integer microseconds; the only differences are the events
  that cast moves across a bin edge (within 1 µs after one), each one bin earlier.
"""

from __future__ import annotations

import numpy as np
import pytest

tonic = pytest.importorskip("tonic", reason="the tonic extra provides tonic 1.7.0")

from silif_deploy.converters.datasets import BINNING, N_UNITS, read_spike_h5  # noqa: E402
from test_datasets import write_shd_like  # noqa: E402

N_SAMPLES, N_EVENTS = 6, 3000


def transform(nb_steps: int, max_time: float):
    from tonic import transforms

    return transforms.Compose([
        transforms.Downsample(spatial_factor=0.2),
        transforms.ToFrame(sensor_size=(N_UNITS // 5, 1, 1), time_window=1e6 * max_time / (nb_steps - 1),
                           start_time=0, end_time=1e6 * max_time, include_incomplete=True),
    ])


@pytest.fixture(scope="module", params=["shd", "ssc"])
def dataset(request, tmp_path_factory):
    """A file in the SHD layout (times a bit past max_time, so some events are dropped), opened by
    tonic's own dataset class (a placeholder zip stands for the download it would otherwise try)."""
    nb_steps, max_time = BINNING[request.param]
    rng = np.random.default_rng(1)
    rows = [(np.sort(rng.random(N_EVENTS) * max_time * 1.05).astype(np.float32),
             rng.integers(0, N_UNITS, N_EVENTS)) for _ in range(N_SAMPLES)]
    root = tmp_path_factory.mktemp("tonic")
    (root / "SHD").mkdir()
    path = write_shd_like(root / "SHD" / "shd_test.h5", rows, labels=[0] * N_SAMPLES, speakers=[1] * N_SAMPLES)
    (root / "SHD" / "shd_test.h5.zip").write_bytes(b"")
    ours = read_spike_h5(path, nb_steps, max_time).x
    assert not ours[:, 0].any() and ours.sum() > 0.9 * N_SAMPLES * N_EVENTS
    return tonic.datasets.SHD(save_to=str(root), train=False), rows, ours, nb_steps, max_time


def test_tonic_transform_equals_our_binning(dataset) -> None:
    shd, rows, ours, nb_steps, max_time = dataset
    tf = transform(nb_steps, max_time)
    for i, (times, units) in enumerate(rows):
        events = tonic.io.make_structured_array(times.astype(np.float64) * 1e6, units, 1,
                                                dtype=np.dtype([("t", float), ("x", int), ("p", int)]))
        frames = tf(events)
        assert frames.shape == (nb_steps - 1, 1, N_UNITS // 5)
        np.testing.assert_array_equal(frames[:, 0], ours[i, 1:])


def test_tonic_dataset_differs_only_by_its_integer_microseconds(dataset) -> None:
    shd, rows, ours, nb_steps, max_time = dataset
    shd.transform = transform(nb_steps, max_time)
    edges = 1e6 * max_time / (nb_steps - 1) * np.arange(1, nb_steps)
    moved = 0
    for i, (times, _) in enumerate(rows):
        frames = shd[i][0][:, 0]
        t_us = times.astype(np.float64) * 1e6
        # events the int cast moves below an edge: edge <= t < ceil(edge), hence one bin earlier
        near = int(np.sum((t_us[:, None] >= edges) & (np.floor(t_us)[:, None] < edges)))
        diff = frames.astype(np.int64) - ours[i, 1:]
        assert diff.sum() == 0 and np.abs(diff).sum() == 2 * near
        moved += near
    assert moved < 1e-3 * N_SAMPLES * N_EVENTS
