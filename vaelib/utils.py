"""Reproducibility and checkpoints."""

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from .data import publish
from .models import VAE, Autoencoder, ConditionalVAE, ConvVAE

# The classes a checkpoint may name. A plain dict: checkpoints never run code.
MODEL_CLASSES = {"VAE": VAE, "Autoencoder": Autoencoder, "ConvVAE": ConvVAE, "ConditionalVAE": ConditionalVAE}


def seed_everything(seed=0, threads=2):
    """Seed Python, NumPy and torch, and fix torch's CPU thread count.

    The same seed and thread count give bit-identical results on the same machine (the number
    of threads changes the order of floating-point sums, hence the last digits). Two threads
    suit a laptop or a 2-core CI runner; pass ``threads=None`` to leave torch's choice alone.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


def save_checkpoint(model, path, dtype=None, **extra):
    """Save ``model``'s weights and constructor config to ``path`` (written atomically).

    Args:
        dtype: e.g. ``torch.float16`` to halve the file size (weights are cast back on load).
        extra: small plain values to keep alongside (e.g. ``test_loss=98.4``).
    """
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"can only save {sorted(MODEL_CLASSES)}, got {name}")
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu()
             for k, v in model.state_dict().items()}
    checkpoint = {"class": name, "config": model.config, "state_dict": state, "extra": extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        # Save through the open file, not its (random) name: torch names the archive inside after
        # the file it is given, so the same model would otherwise give different bytes each time.
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path, expect=None, map_location="cpu"):
    """Rebuild a model saved by :func:`save_checkpoint` (read with ``weights_only=True``).

    Args:
        expect: optional dict of config values the model must have, e.g. ``{"latent_dim": 2}``.

    Returns:
        the model, in eval mode, in float32; ``model.extra`` holds the saved extras.

    Raises:
        FileNotFoundError, or ValueError saying what the file holds and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a vaelib checkpoint readable with weights_only=True ({e})") from e
    if not isinstance(checkpoint, dict) or not {"class", "config", "state_dict"} <= set(checkpoint):
        raise ValueError(f"{path} is not a vaelib checkpoint (expected a dict with "
                         "'class', 'config' and 'state_dict')")
    name, config = checkpoint["class"], checkpoint["config"]
    if name not in MODEL_CLASSES:
        raise ValueError(f"{path} holds a {name!r}; expected one of {sorted(MODEL_CLASSES)}")
    for key, value in (expect or {}).items():
        if config.get(key) != value:
            raise ValueError(f"{path} holds a {name} with {key}={config.get(key)!r}, expected {key}={value!r}")
    model = MODEL_CLASSES[name](**config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path} does not match a {name}({config}): {e}") from e
    model.extra = dict(checkpoint.get("extra", {}))
    return model.eval()


def check_environment():
    """What the series needs, and what this machine has.

    Returns:
        list of ``(name, version or None, advice)``: ``version`` is None when the package is
        missing or too old, and ``advice`` says what to do about it.
    """
    import importlib
    import platform
    import sys

    report = [("python", platform.python_version(),
               "" if sys.version_info >= (3, 10) else "the series needs Python 3.10 or newer")]
    needs = {"torch": "2.2", "numpy": "1.24", "matplotlib": "3.7", "tqdm": "4.66", "ipywidgets": "7.7.1"}
    for name, minimum in needs.items():
        try:
            version = importlib.import_module(name).__version__
        except ImportError:
            report.append((name, None, f"missing: pip install '{name}>={minimum}'"))
            continue
        too_old = _version_tuple(version) < _version_tuple(minimum)
        report.append((name, None if too_old else version,
                       f"version {version} is too old: pip install -U '{name}>={minimum}'" if too_old else ""))
    from .train import pick_device
    report.append(("device", str(pick_device()), ""))
    return report


def _version_tuple(version):
    """'2.13.0+cpu' -> (2, 13, 0)."""
    parts = []
    for piece in version.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
