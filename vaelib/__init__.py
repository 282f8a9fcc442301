"""vaelib: the small library behind the VAE notebook series.

Read it after the notebooks, one module at a time:

* ``data``   -- MNIST: a bundled offline subset, and the full set on request
* ``models`` -- ``Autoencoder``, ``GaussianEncoder``, ``Decoder``, ``VAE``, ``ConvVAE``, ``ConditionalVAE``
* ``losses`` -- reconstruction log-likelihoods, KL to N(0, I), negative ELBO, IWAE estimate
* ``train``  -- ``fit`` and ``evaluate``
* ``plots``  -- image grids, latent maps, loss curves
* ``utils``  -- ``seed_everything``, checkpoints
* ``exercises`` -- the checks of each notebook's exercises
* ``pretrained`` -- the checkpoints that ship with vaelib (trained in notebooks 01 and 05, and for 08)
* ``judge``  -- ``nearest_digit``: one criterion for what a decoded image looks like
* ``report`` -- ``approx``: print a trained figure with its tolerance, checked
* ``widgets`` -- the live explorers of notebooks 06 and 09: sliders -> decoded digits as PNG bytes
"""

from . import threads  # first, before torch loads: OpenMP's idle threads sleep (see threads.py)
from . import data, exercises, judge, losses, models, plots, pretrained, report, train, utils, widgets
from .data import load_fashion_mnist, load_mnist
from .losses import (bernoulli_log_likelihood, gaussian_log_likelihood, iwae_log_likelihood,
                     kl_to_standard_normal, negative_elbo)
from .models import VAE, Autoencoder, ConditionalVAE, ConvVAE, Decoder, GaussianEncoder
from .pretrained import load_pretrained, pretrained_path
from .report import approx
from .train import evaluate, fit, pick_device
from .utils import check_environment, load_checkpoint, save_checkpoint, seed_everything

__version__ = "0.1.0"

__all__ = [
    "data", "exercises", "judge", "losses", "models", "plots", "pretrained", "report", "train", "utils", "widgets",
    "approx",
    "load_fashion_mnist", "load_mnist",
    "bernoulli_log_likelihood", "gaussian_log_likelihood", "iwae_log_likelihood",
    "kl_to_standard_normal", "negative_elbo",
    "VAE", "Autoencoder", "ConditionalVAE", "ConvVAE", "Decoder", "GaussianEncoder",
    "load_pretrained", "pretrained_path",
    "evaluate", "fit", "pick_device",
    "check_environment", "load_checkpoint", "save_checkpoint", "seed_everything",
]
