"""vaelib: the small library behind the VAE notebook series.

Read it after the notebooks, one module at a time:

* ``data``   -- MNIST: a bundled offline subset, the full set on request, and binarized digits
* ``models`` -- ``Model`` (what every model provides), ``Autoencoder``, ``VAE``, ``ConvVAE``, ``ConditionalVAE``
* ``losses`` -- reconstruction log-likelihoods, KL to N(0, I), negative ELBO, IWAE estimate
* ``train``  -- ``fit`` and ``evaluate``
* ``plots``  -- image grids, latent maps, loss curves
* ``checkpoints`` -- ``save_checkpoint``, ``load_checkpoint``, and the one atomic file write
* ``environment`` -- ``seed_everything``, ``check_environment``
* ``exercises`` -- the checks of each notebook's exercises
* ``pretrained`` -- the one registry of the checkpoints that ship with vaelib, and what makes each
* ``judge``  -- a small classifier, validated: what an image looks like, whether it is a digit, set-level scores
* ``render`` -- pictures as arrays and PNG bytes: tiles, the latent map, a model's decoded digits
* ``widgets`` -- the live explorers of notebooks 06, 07 and 09: sliders -> decoded digits as PNG bytes
* ``posteriors`` -- richer q(z | x): a full-covariance Gaussian, affine coupling flows, the 2-D grid that measures them
* ``iwae``   -- the k-sample bound, ``IWAE`` (a VAE trained on it), log p(x) under any prior, active units, gradient SNR
* ``priors`` -- a Gaussian mixture fitted by EM to a model's codes: a prior fitted after training
* ``gaps2d`` -- the amortization and approximation gaps of a 2-D VAE: grid log p(x), per-digit q
"""

from . import threads  # fit follows the load: no more threads than idle CPUs (see threads.py)
from . import (checkpoints, data, environment, exercises, judge, losses, models, plots, pretrained, render, train,
               widgets)
from . import posteriors
from .posteriors import FlowVAE, FullCovVAE
from .checkpoints import load_checkpoint, save_checkpoint
from .data import load_fashion_mnist, load_mnist
from .environment import check_environment, seed_everything
from .losses import (bernoulli_log_likelihood, gaussian_log_likelihood, iwae_log_likelihood,
                     kl_to_standard_normal, negative_elbo)
from .models import VAE, Autoencoder, ConditionalVAE, ConvVAE, Decoder, GaussianEncoder, Model
from .pretrained import load_pretrained, pretrained_path
from .train import evaluate, fit, pick_device

from . import gaps2d, iwae, priors  # notebook 11: tighter bounds and better priors
from .iwae import IWAE

__version__ = "0.1.0"

__all__ = [
    "checkpoints", "data", "environment", "exercises", "judge", "losses", "models", "plots", "pretrained", "render",
    "train", "widgets",
    "load_fashion_mnist", "load_mnist",
    "bernoulli_log_likelihood", "gaussian_log_likelihood", "iwae_log_likelihood",
    "kl_to_standard_normal", "negative_elbo",
    "Model", "VAE", "Autoencoder", "ConditionalVAE", "ConvVAE", "Decoder", "GaussianEncoder",
    "load_pretrained", "pretrained_path",
    "evaluate", "fit", "pick_device",
    "check_environment", "load_checkpoint", "save_checkpoint", "seed_everything",
    "posteriors", "FullCovVAE", "FlowVAE",
]
__all__ += ["gaps2d", "iwae", "priors", "IWAE"]
