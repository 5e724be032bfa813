"""Float and fixed-point predictions of one model on labelled data, for accuracy budgets."""

from __future__ import annotations

import os

import numpy as np

from silif_deploy.converters.datasets import InputSource, open_input
from silif_deploy.converters.input_checks import check_labels
from silif_deploy.deploy import sharding
from silif_deploy.deploy.engines import is_spiking_ssm, load_float_model, source_kind
from silif_deploy.deploy.batching import batches
from silif_deploy.errors import SilifDeployError
from silif_deploy.hw_models.network import FixedPointNetwork
from silif_deploy.hw_models.simulator import simulate


def model_binning(model) -> tuple[int, float] | None:
    """The (nb_steps, max_time) a model was trained with, when its checkpoint recorded it."""
    binning = getattr(model.config, "extra", {}).get("binning")  # SpikingSSM configs record none
    return (int(binning[0]), float(binning[1])) if binning else None


def fixed_network(model_path: str | os.PathLike, model, profile: str | None,
                  calibration: InputSource | None = None) -> FixedPointNetwork:
    """The artifact's network, or a checkpoint quantized in memory under ``profile`` (weights-only
    ranges; calibrated on ``calibration`` when given)."""
    if source_kind(model_path) == "artifact":
        from silif_deploy.converters.artifact import read_artifact

        if profile is not None:
            raise SilifDeployError("--profile applies to checkpoints; an artifact was quantized already")
        return read_artifact(model_path)
    from silif_deploy.deploy.pipeline import quantize_model
    from silif_deploy.hw_models.profile import load_profile

    return quantize_model(model, load_profile(profile), calibration)


def load_labelled(data_path: str | os.PathLike, model, binning: str | None) -> InputSource:
    data = open_input(data_path, n_channels=model.config.n_inputs, binning=binning or model_binning(model))
    if data.labels is None:
        raise SilifDeployError(f"'{data_path}' has no labels; --data needs labelled samples (.h5, or .npz with 'labels')")
    data.labels = check_labels(data.labels, str(data_path), model.config.n_classes)
    return data


def fixed_and_float_predictions(
    model_path: str | os.PathLike, data_path: str | os.PathLike, binning: str | None = None,
    profile: str | None = None, model_type: str | None = None, scheduler: str | None = None,
    shard_size: int = sharding.DEFAULT_SHARD_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (labels, float predictions, fixed-point predictions) over the whole data file, in one
    pass (each batch runs on both; the hidden spike rasters are not kept); with a ``scheduler``
    (:func:`~silif_deploy.deploy.sharding.scheduler_address`), as shards of ``shard_size`` samples
    on that Dask cluster, whose workers read the data themselves."""
    model = load_float_model(model_path, model_type=model_type, for_fixed_point="verify --data")
    # a SpikingSSM checkpoint's scales come from a float pass: over the data itself (an artifact keeps its own)
    calibrate = is_spiking_ssm(model) and source_kind(model_path) != "artifact"
    if sharding.scheduler_address(scheduler) is not None:
        if calibrate:
            raise SilifDeployError(f"'{model_path}': a {model.config.family} checkpoint is calibrated on --data in this "
                                   "process; drop --scheduler, or export it with --calibrate and verify the artifact")
        return _sharded_predictions(model, model_path, data_path, binning or model_binning(model), profile,
                                    model_type, scheduler, shard_size)
    data = load_labelled(data_path, model, binning)
    network = fixed_network(model_path, model, profile, data if calibrate else None)
    float_pred, fixed_pred = [], []
    for xb, _ in batches(data, "float + fixed point"):
        float_pred.append(model.run(xb).prediction)
        fixed_pred.append(simulate(network, xb, batch_size=len(xb), keep_spikes=False).prediction)
    return data.labels, np.concatenate(float_pred), np.concatenate(fixed_pred)


def _sharded_predictions(model, model_path, data_path, binning, profile, model_type, scheduler,
                         shard_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with sharding.dask_client(scheduler=scheduler) as client:
        if not sharding.inspect_input(client, data_path, model.config.n_inputs, binning).labelled:
            raise SilifDeployError(f"'{data_path}' has no labels; --data needs labelled samples (.h5, or .npz with 'labels')")
        parts = sharding.map_shards(client, sharding.predictions_shard, data_path, str(model_path), profile, model_type,
                                    shard_size=shard_size, binning=binning, desc="float + fixed point shards")
    labels, float_pred, fixed_pred = (np.concatenate(column) for column in zip(*parts))
    return check_labels(labels, str(data_path), model.config.n_classes), float_pred, fixed_pred
