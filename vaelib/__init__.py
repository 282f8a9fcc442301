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
* ``hierarchical`` -- a two-layer VAE with top-down inference, the KL of each layer, its IWAE estimate
* ``vq``     -- the VQ-VAE: quantizer, straight-through gradient, codebook usage, priors over the codes
* ``shapes`` -- squares whose factors (x, y, size) are known, and the mutual information gap
"""

from . import threads  # fit follows the load: no more threads than idle CPUs (see threads.py)
from . import (checkpoints, data, environment, exercises, gaps2d, hierarchical, iwae, judge, losses, models, plots,
               posteriors, pretrained, priors, render, shapes, train, vq, widgets)
from .checkpoints import load_checkpoint, save_checkpoint
from .data import load_fashion_mnist, load_mnist
from .environment import check_environment, seed_everything
from .hierarchical import HierarchicalVAE, hierarchical_iwae
from .iwae import IWAE
from .losses import (bernoulli_log_likelihood, gaussian_log_likelihood, iwae_log_likelihood,
                     kl_to_standard_normal, negative_elbo)
from .models import VAE, Autoencoder, ConditionalVAE, ConvVAE, Decoder, GaussianEncoder, Model
from .posteriors import FlowVAE, FullCovVAE
from .pretrained import load_pretrained, pretrained_path
from .shapes import load_shapes
from .train import evaluate, fit, pick_device
from .vq import VQVAE

__version__ = "0.1.0"

__all__ = [
    "checkpoints", "data", "environment", "exercises", "judge", "losses", "models", "plots", "pretrained", "render",
    "train", "widgets", "posteriors", "iwae", "priors", "gaps2d", "hierarchical", "vq", "shapes",
    "load_fashion_mnist", "load_mnist", "load_shapes",
    "bernoulli_log_likelihood", "gaussian_log_likelihood", "iwae_log_likelihood",
    "kl_to_standard_normal", "negative_elbo",
    "Model", "VAE", "Autoencoder", "ConditionalVAE", "ConvVAE", "Decoder", "GaussianEncoder",
    "FullCovVAE", "FlowVAE", "IWAE", "HierarchicalVAE", "hierarchical_iwae", "VQVAE",
    "load_pretrained", "pretrained_path",
    "evaluate", "fit", "pick_device",
    "check_environment", "load_checkpoint", "save_checkpoint", "seed_everything",
]
