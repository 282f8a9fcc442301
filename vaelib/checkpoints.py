"""Checkpoints: a model's weights and constructor config in one file, written atomically, read safely.

A checkpoint is a plain dict ``{"class", "config", "state_dict", "extra"}`` saved with
``torch.save`` and read back with ``weights_only=True``, which refuses anything that would run
code. :func:`atomic_write` is the one place where vaelib writes a file (checkpoints here, the
downloads of :mod:`vaelib.data`): all of it, or nothing under the real name.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from .hierarchical import HierarchicalVAE
from .iwae import IWAE
from .judge import DigitClassifier
from .models import VAE, Autoencoder, ConditionalVAE, ConvVAE
from .posteriors import FlowVAE, FullCovVAE
from .vq import VQVAE

# The classes a checkpoint may name. A plain dict: checkpoints never run code.
MODEL_CLASSES = {cls.__name__: cls for cls in (Autoencoder, VAE, ConvVAE, ConditionalVAE, DigitClassifier,
                                               FullCovVAE, FlowVAE, IWAE, HierarchicalVAE, VQVAE)}


def default_file_mode():
    """Permissions a new file gets under the current umask (``tempfile.mkstemp`` uses 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(target):
    """Write ``target`` all at once or not at all: ``with atomic_write(path) as f: f.write(...)``.

    Yields a binary file in ``target``'s folder (made if missing). When the block ends without an
    error, the file gets the permissions of a normally created file and replaces ``target`` in one
    step (``os.replace``); on any error it is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    # Save through the open file, not its (random) name: torch names the archive inside after
    # the file it is given, so the same model would otherwise give different bytes each time.
    with atomic_write(path) as f:
        torch.save(checkpoint, f)
    return Path(path)


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
