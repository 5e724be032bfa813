"""Checkpoints in, models out: the authors' plain ``state_dict`` files and our self-describing format.

Authors' files (``torch.save(net.state_dict())``) carry no configuration: the model type comes from
the first hidden layer's keys (``neurons.md`` §10) and the sizes from the tensor shapes. Ours is a
dict ``{"format": "silif-deploy-checkpoint", "format_version", "producer", "config", "state_dict"}``.
Both load with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

from silif_deploy import PRODUCER, __version__
from silif_deploy.converters.files import atomic_output, require_file, sha256_file
from silif_deploy.errors import SilifDeployError

CHECKPOINT_FORMAT = "silif-deploy-checkpoint"
CHECKPOINT_VERSION = 1
_LAYER_KEY = re.compile(r"^snn\.(\d+)\.(.+)$")
_SHARED_KEYS = ("W.", "norm.")
"""A hidden layer's keys that every family has; the rest are its neuron's (``neuron_keys``)."""


def import_torch():
    """Import torch, or fail with the install command for the extra that provides it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised in the Lava environment only
        raise SilifDeployError(
            "this step needs PyTorch, which is not installed here: pip install 'silif-deploy[torch]'"
        ) from None
    return torch


def load_weights(path: str | os.PathLike) -> tuple[Path, Any]:
    """(the checked path, the unpickled object) of a checkpoint file, loaded with
    ``torch.load(weights_only=True)`` only: the one place every checkpoint reader unpickles, so a file
    that needs arbitrary code, or garbage, is refused with the same line whatever it claims to hold."""
    torch = import_torch()
    p = require_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols: the refusal below says it
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # "Unsupported global" (torch >= 2.4) / "Unsupported class" (older): a pickled object that
        # needs its class's code. Other weights-only failures ("Unsupported operand") are garbage.
        text = str(err).lower()
        if "unsupported global" in text or "unsupported class" in text:
            raise SilifDeployError(
                f"'{p}' needs arbitrary code to unpickle (not a plain state_dict); refused for safety. "
                "Re-save it with torch.save(model.state_dict(), path)"
            ) from None
        raise SilifDeployError(f"'{p}' is not a PyTorch checkpoint (unreadable pickle data)") from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise SilifDeployError(f"'{p}' is not a PyTorch checkpoint ({_first_line(err)})") from None
    except Exception:  # noqa: BLE001 - the weights-only unpickler raises IndexError, KeyError, ... on garbage
        raise SilifDeployError(f"'{p}' is not a PyTorch checkpoint (unreadable pickle data)") from None
    return p, obj


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return (state_dict, config or None) from a checkpoint file, refusing unsafe pickles."""
    return checkpoint_parts(*load_weights(path))


def checkpoint_parts(p: Path, obj: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(state_dict, config or None) of a loaded SiLIF-family checkpoint: ours, or the authors' plain state_dict."""
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        try:
            version = int(obj.get("format_version", 0))
        except (TypeError, ValueError):
            raise SilifDeployError(f"'{p}' is a damaged silif-deploy checkpoint (bad format_version)") from None
        if version > CHECKPOINT_VERSION:
            raise SilifDeployError(
                f"'{p}' is a silif-deploy checkpoint of format version {version}; this tool reads up to "
                f"{CHECKPOINT_VERSION}: upgrade silif-deploy"
            )
        state, config = obj.get("state_dict"), obj.get("config")
        if not isinstance(state, Mapping) or not isinstance(config, Mapping):
            raise SilifDeployError(f"'{p}' is a damaged silif-deploy checkpoint (no state_dict or config)")
        return dict(state), dict(config)
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) for k in obj):
        if not any(_LAYER_KEY.match(k) for k in obj):
            raise SilifDeployError(
                f"'{p}' holds a dict without 'snn.<i>.' or 'backbone.s4_layers.<i>.kernel' keys; it is neither a "
                f"SiLIF-family nor a SpikingSSM state_dict"
            )
        return dict(obj), None
    raise SilifDeployError(f"'{p}' holds a {type(obj).__name__}, not a state_dict")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _layer_keys(state: Mapping[str, Any]) -> dict[int, set[str]]:
    layers: dict[int, set[str]] = {}
    for key in state:
        m = _LAYER_KEY.match(key)
        if m:
            layers.setdefault(int(m.group(1)), set()).add(m.group(2))
    return layers


def neuron_keys(keys) -> frozenset[str]:
    """A layer's own neuron parameters: its keys without W and BatchNorm."""
    return frozenset(k for k in keys if not k.startswith(_SHARED_KEYS))


@functools.cache
def family_keys(layer_cls: type) -> frozenset[str]:
    """The neuron keys of a family's layer class (a 1-neuron layer built on the meta device to read
    them: no memory, and no draw from torch's random generator)."""
    torch = import_torch()
    with torch.device("meta"):
        return neuron_keys(layer_cls(1, 1).state_dict())


def first_neuron_keys(state: Mapping[str, Any]) -> frozenset[str]:
    """The first hidden layer's neuron keys, refusing state_dicts that have no hidden layer or are recurrent."""
    layers = _layer_keys(state)
    if len(layers) < 2:
        raise SilifDeployError("the state_dict has fewer than two 'snn.<i>' layers (hidden + readout)")
    keys = layers[min(layers)]
    if "V.weight" in keys:
        raise SilifDeployError("recurrent layers (V.weight: RLIF / RadLIF) are not supported")
    return neuron_keys(keys)


def candidate_types(state: Mapping[str, Any]) -> list[str]:
    """The detectable families that explain most of the first hidden layer's neuron keys: of those
    whose keys it all has, the ones with the most keys (SiLIF's keys include adLIF's, which include
    LIF's); a key no family has is left for :func:`build_model` to name."""
    from silif_deploy.converters.families import FAMILIES

    found = first_neuron_keys(state)
    fits = {name: family_keys(kind.layer) for name, kind in FAMILIES.items() if kind.detect}
    fits = {name: k for name, k in fits.items() if k <= found}
    if not fits:
        first = min(_layer_keys(state))
        raise SilifDeployError(f"cannot tell the model type from the keys of snn.{first}: {sorted(_layer_keys(state)[first])}")
    most = max(map(len, fits.values()))
    return [name for name, k in fits.items() if len(k) == most]


def detect_model_type(state: Mapping[str, Any]) -> str:
    """Model type from the first hidden layer's keys; families with identical keys (adLIF and cAdLIF)
    cannot be told apart: the user names one."""
    matches = candidate_types(state)
    if len(matches) > 1:
        raise SilifDeployError(
            f"{' and '.join(matches)} checkpoints have identical keys; pass the model type: "
            + " or ".join(f"--model-type {m}" for m in matches)
        )
    return matches[0]


def infer_config(state: Mapping[str, Any], model_type: str) -> dict[str, Any]:
    """Sizes from shapes: D = snn.0.W.weight[1], H_i = snn.i.W.weight[0], K = snn.L.W.weight[0]."""
    layers = _layer_keys(state)
    indices = sorted(layers)
    if indices != list(range(len(indices))):
        raise SilifDeployError(f"layer indices are not contiguous from 0: snn.{indices}")
    for i in indices:
        if f"snn.{i}.W.weight" not in state:
            raise SilifDeployError(f"missing key snn.{i}.W.weight")
        if getattr(state[f"snn.{i}.W.weight"], "ndim", None) != 2:
            raise SilifDeployError(f"'snn.{i}.W.weight' is not a 2-D weight tensor")
    hidden = [int(state[f"snn.{i}.W.weight"].shape[0]) for i in indices[:-1]]
    return {
        "model_type": model_type,
        "n_inputs": int(state["snn.0.W.weight"].shape[1]),
        "hidden_sizes": hidden,
        "n_classes": int(state[f"snn.{indices[-1]}.W.weight"].shape[0]),
    }


def build_model(state: Mapping[str, Any], config: Mapping[str, Any], source: str = "state_dict"):
    """Build the eval-mode model of ``config`` and load ``state`` strictly, with one-line errors."""
    torch = import_torch()
    from silif_deploy.converters.torch_network import NetworkConfig, SpikingNetwork

    torch.manual_seed(0)  # initial values are overwritten; the seed only keeps construction reproducible
    try:
        cfg = NetworkConfig(**{k: v for k, v in config.items() if k in NetworkConfig.__dataclass_fields__})
        model = SpikingNetwork(cfg)
    except (TypeError, ValueError, RuntimeError, KeyError) as err:
        raise SilifDeployError(f"{source}: invalid network configuration ({_first_line(err)})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:4]}{' ...' if len(missing) > 4 else ''}")
        if extra:
            parts.append(f"unexpected keys {extra[:4]}{' ...' if len(extra) > 4 else ''}")
        raise SilifDeployError(f"{source} does not match a {cfg.model_type} network: {'; '.join(parts)}")
    for key, ref in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise SilifDeployError(f"{source}: '{key}' is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise SilifDeployError(
                f"{source}: '{key}' has shape {tuple(value.shape)}, expected {tuple(ref.shape)} "
                "(layer sizes do not chain)"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise SilifDeployError(f"{source}: '{key}' contains NaN or inf")
    model.load_state_dict({k: state[k] for k in expected}, strict=True)
    return model.eval()


def load_model(
    path: str | os.PathLike, model_type: str | None = None, init_state: str = "zeros",
    neuron: str | None = None, prenorm: bool | None = None, target: str | None = None, deploy: bool = False,
):
    """Load a checkpoint as an eval-mode model (dropout off): a :class:`SpikingNetwork`, or a
    :class:`~silif_deploy.converters.families.spiking_ssm.SpikingSSMNet`.

    ``model_type`` is needed only where the keys cannot tell (adLIF vs cAdLIF); when given it must
    agree with the keys. ``init_state`` is ``"zeros"`` (hardware, default) or ``"random"`` (authors).

    SpikingSSM and binary-S4D checkpoints (the authors' flat or Lightning layout, or ours) are told
    from their keys by the one hook :func:`~silif_deploy.converters.families.spiking_ssm.detect_checkpoint`;
    for them ``neuron`` is ``lif`` (default: the exact LIF, what export deploys) or ``sdn`` (the authors'
    training neuron), ``prenorm`` says where the norms act when the file does not (the authors' flat
    layout), and ``target`` names a hardware target, which refuses bidirectional models; ``deploy``
    reads a SpikingSSM network with the exact LIF unless ``neuron`` says otherwise (what export
    deploys; the model's ``trained_neuron`` tells what it trained through).
    """
    p, obj = load_weights(path)
    from silif_deploy.converters.families import spiking_ssm

    found = spiking_ssm.detect_checkpoint(obj)
    if found is not None:
        model = spiking_ssm.model_from_checkpoint(found, f"'{path}'", neuron=neuron, prenorm=prenorm,
                                                  target=target, model_type=model_type, deploy=deploy)
        model.source_sha256 = sha256_file(path)
        return model
    if neuron is not None or prenorm is not None:
        raise SilifDeployError(f"'{path}' holds no SpikingSSM network: the neuron mode and the norm placement "
                               "(--neuron, --norm-placement) apply to SpikingSSM checkpoints only")
    state, config = checkpoint_parts(p, obj)
    if model_type is not None:
        from silif_deploy.converters.families import family

        named = family(model_type)  # refuses an unknown type in one line
    if config is None:
        detected = None
        # a named type whose keys are the checkpoint's is taken as it is (adLIF vs cAdLIF: only the user knows)
        if model_type is None or family_keys(named.layer) != first_neuron_keys(state):
            detected = detect_model_type(state)
        if model_type is not None and detected is not None and model_type != detected:
            raise SilifDeployError(f"'{path}' holds a {detected} network, not {model_type}")
        config = infer_config(state, model_type or detected)  # type: ignore[arg-type]
    elif model_type is not None and model_type != config["model_type"]:
        raise SilifDeployError(f"'{path}' holds a {config['model_type']} network, not {model_type}")
    config = {**config, "init_state": init_state}
    model = build_model(state, config, source=f"'{Path(path).name}'")
    model.source_sha256 = sha256_file(path)
    return model


def save_checkpoint(model, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> None:
    """Write our self-describing checkpoint (config + state_dict + producer), atomically."""
    torch = import_torch()
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "producer": f"{PRODUCER} {__version__}",
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "extra": dict(extra or {}),
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
