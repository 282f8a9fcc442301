"""The two gaps of a 2-D VAE, measured (Cremer, Li & Duvenaud 2018; notebook 04, sections 5 and 6).

For an image x, ``log p(x) - ELBO(x) = amortization gap + approximation gap``:

* ELBO: of the encoder's q(z | x);
* optimised ELBO: of the best diagonal Gaussian for this image, found by gradient ascent on its own
  ``mu`` and ``log sigma`` with the decoder fixed;
* ``log p(x)``: with a 2-D code, a sum over a fine grid of codes (no sampling, no bound).

amortization gap = optimised ELBO - ELBO; approximation gap = log p(x) - optimised ELBO. Every function
takes an optional ``log_prior`` (codes ``(..., 2)`` -> ``(...)``; default N(0, I)), so a model with another
prior is measured the same way. Nats per image, ``(N,)`` tensors.
"""

import math

import torch

from .iwae import _log_weights, standard_normal_log_density
from .losses import _reconstruction_log_likelihood


def _log_joint(model, x, z, log_prior):
    # log p(x | z) + log p(z) for one image x (1, D) at codes z (m, 2) -> (m,)
    log_px_z = _reconstruction_log_likelihood(x.expand(len(z), -1), model.decode(z), model.likelihood)
    return log_px_z + (standard_normal_log_density(z) if log_prior is None else log_prior(z))


@torch.no_grad()
def grid_log_likelihood(model, x, log_prior=None, n=121, width=8.0):
    """``log p(x)`` of each image by a sum over an ``n x n`` grid of codes around the encoder's ``mu``,
    ``width`` times its largest ``sigma`` each way (notebook 04's ``on_grid``): ``(N, D)`` -> ``(N,)``.
    """
    if model.latent_dim != 2:
        raise ValueError(f"a grid over the codes needs a 2-D latent space, got latent_dim={model.latent_dim}")
    x = model.flatten(x)
    mu, sigma = model.encode(x)
    out = []
    for i in range(len(x)):
        offsets = torch.linspace(-1, 1, n) * width * sigma[i].max()
        z1, z2 = torch.meshgrid(offsets + mu[i, 0], offsets + mu[i, 1], indexing="xy")
        z = torch.stack([z1, z2], -1).reshape(-1, 2)                          # (n * n, 2)
        log_joint = _log_joint(model, x[i:i + 1], z, log_prior)
        out.append(torch.logsumexp(log_joint, 0) + 2 * math.log(offsets[1] - offsets[0]))
    return torch.stack(out)


@torch.no_grad()
def elbo(model, x, mu, sigma, log_prior=None, samples=1000, seed=0):
    """ELBO of each image under the Gaussian q = N(mu, diag(sigma^2)): the mean of ``samples`` log-weights
    (draws from ``torch.Generator().manual_seed(seed)``). ``x``: ``(N, D)``; ``mu``, ``sigma``: ``(N, 2)``."""
    x = model.flatten(x)
    eps = torch.randn(samples, *mu.shape, generator=torch.Generator().manual_seed(seed))
    return _log_weights(model, x, mu, sigma, mu + sigma * eps, log_prior).mean(0)


def optimise_posteriors(model, x, log_prior=None, steps=300, samples=16, lr=0.05, seed=0):
    """Each image's own diagonal Gaussian q: start at the encoder's ``(mu, sigma)``, then Adam on the sum of the
    images' ELBOs (``samples`` draws of eps a step), step size decaying to 0 along a cosine; the decoder is
    fixed. Returns ``(mu, sigma)``, each ``(N, 2)``, detached."""
    x = model.flatten(x)
    with torch.no_grad():
        mu0, sigma0 = model.encode(x)
    mu, log_sigma = mu0.clone().requires_grad_(), sigma0.log().requires_grad_()
    optimizer = torch.optim.Adam([mu, log_sigma], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            eps = torch.randn(samples, *mu.shape, generator=generator)
            z = mu + log_sigma.exp() * eps
            loss = -_log_weights(model, x, mu, log_sigma.exp(), z, log_prior).mean(0).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return mu.detach(), log_sigma.exp().detach()


def gaps(model, x, log_prior=None, steps=100, samples=500, grid=61):
    """The split of each image's slack: dict of ``(N,)`` tensors in nats, ``"elbo"`` (the encoder's q),
    ``"optimised_elbo"``, ``"log_px"`` (grid), ``"amortization"`` and ``"approximation"`` gaps.

    The defaults are fast: on notebook 11's 2-D models, a 61 x 61 grid gives ``log p(x)`` within 0.02 nats of a
    121 x 121 one, and 100 steps the optimised ELBO within 0.03 nats of 300 steps (both checked on 8 digits)."""
    x = model.flatten(x)
    with torch.no_grad():
        mu, sigma = model.encode(x)
    mu_opt, sigma_opt = optimise_posteriors(model, x, log_prior, steps=steps)
    out = {"elbo": elbo(model, x, mu, sigma, log_prior, samples),
           "optimised_elbo": elbo(model, x, mu_opt, sigma_opt, log_prior, samples),
           "log_px": grid_log_likelihood(model, x, log_prior, n=grid)}
    out["amortization"] = out["optimised_elbo"] - out["elbo"]
    out["approximation"] = out["log_px"] - out["optimised_elbo"]
    return out
