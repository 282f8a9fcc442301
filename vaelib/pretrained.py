"""Checkpoints that ship with vaelib, so the explorer opens with no training.

They are exactly what the notebooks save: ``ae_2d`` by 01_autoencoder, ``vae_2d`` and ``vae_20d``
by 05_training; the three models of 08_conv_vae, longer to train than that notebook may run, by
``scripts/train_conv_checkpoints.py`` with the recipe of ``vae_20d`` (run them, then
``python scripts/ship_checkpoints.py`` copies them here).
"""

from .data import ASSETS
from .utils import load_checkpoint

PRETRAINED = {
    "ae_2d": "Autoencoder([784, 256, 2]) from 01_autoencoder",
    "vae_2d": "VAE(hidden=(256,), latent_dim=2) from 05_training",
    "vae_20d": "VAE(hidden=(400,), latent_dim=20) from 05_training",
    "conv_vae_mnist": "ConvVAE(latent_dim=20) on MNIST, vae_20d's recipe, for 08_conv_vae",
    "conv_vae_fashion": "ConvVAE(latent_dim=20) on Fashion-MNIST, for 08_conv_vae",
    "mlp_vae_fashion": "VAE(hidden=(400,), latent_dim=20) on Fashion-MNIST, for 08_conv_vae",
}


def pretrained_path(name):
    """Path of a shipped checkpoint (see ``PRETRAINED`` for the names)."""
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}; choose one of {sorted(PRETRAINED)}")
    return ASSETS / f"{name}.pt"


def load_pretrained(name):
    """Load a shipped model in eval mode on the CPU, e.g. ``load_pretrained("vae_2d")``."""
    return load_checkpoint(pretrained_path(name))
