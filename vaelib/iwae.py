"""A tighter bound as the objective: the importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2015).

With k samples ``z_i ~ q(z | x)`` and log-weights ``log w_i = log p(x | z_i) + log p(z) - log q(z_i | x)``,

    L_k(x) = log (1/k) sum_i w_i = logsumexp_i(log w_i) - log k   <=   log p(x).

``L_1`` is the ELBO (one sample); the expected ``L_k`` rises with k towards ``log p(x)``
(Burda et al., Theorem 1). :class:`IWAE` is a :class:`vaelib.VAE` whose ``loss`` is ``-L_k``, so
:func:`vaelib.fit` trains it unchanged. The functions below compute log-weights under any prior,
the bound, an estimate of ``log p(x)``, Burda's active units and the gradient signal-to-noise
ratio of Rainforth et al. (2018). All numbers are in nats.
"""

import math

import torch

from .losses import _kl_to_standard_normal, _reconstruction_log_likelihood, gaussian_log_density
from .models import VAE, _size


def standard_normal_log_density(z):
    """log N(z; 0, I), summed over the last dimension: ``(..., d)`` -> ``(...)``."""
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def iwae_bound(log_w):
    """The k-sample bound from log-weights: ``(k, batch)`` -> ``(batch,)``, ``logsumexp(log_w, 0) - log k``.

    Never leaves log space, so log-weights near -1000 nats are fine in float32.
    """
    if log_w.dim() != 2 or len(log_w) < 1:
        raise ValueError(f"expected log-weights of shape (k, batch) with k >= 1, got {tuple(log_w.shape)}")
    return torch.logsumexp(log_w, dim=0) - math.log(len(log_w))


def log_weights(model, x, k, log_prior=None, eps=None):
    """Log-weights ``log p(x | z_i) + log p(z_i) - log q(z_i | x)`` of k samples of q for each image.

    Gradients flow through them (reparameterized samples ``z = mu + sigma * eps``).

    Args:
        model: a vaelib VAE (its ``encode`` gives ``mu`` and ``sigma``).
        x: ``(batch, 784)`` images in [0, 1] (binarized, for a Bernoulli decoder).
        k: samples per image.
        log_prior: the prior's log density, ``(..., latent_dim)`` -> ``(...)``; default N(0, I).
        eps: optional ``(k, batch, latent_dim)`` standard normal draws to use.
    Returns:
        ``(k, batch)`` log-weights in nats.
    """
    if not getattr(model, "variational", False):
        raise ValueError(f"log-weights need a VAE, whose encoder gives mu and sigma; got a {type(model).__name__}")
    k = _size("k", k)
    x = model.flatten(x)
    mu, sigma = model.encode(x)
    if eps is None:
        eps = torch.randn(k, *mu.shape, device=mu.device)
    elif tuple(eps.shape) != (k, *mu.shape):
        raise ValueError(f"eps must have shape (k, batch, latent_dim) = {(k, *mu.shape)}, got {tuple(eps.shape)}")
    return _log_weights(model, x, mu, sigma, mu + sigma * eps, log_prior)


def _log_weights(model, x, mu, sigma, z, log_prior=None):
    k, b = z.shape[:2]
    output = model.decode(z.reshape(k * b, -1)).view(k, b, -1)                  # (k, b, D)
    log_px_z = _reconstruction_log_likelihood(x.expand(k, -1, -1), output, model.likelihood)   # (k, b)
    log_pz = standard_normal_log_density(z) if log_prior is None else log_prior(z)
    return log_px_z + log_pz - gaussian_log_density(z, mu, sigma)


@torch.no_grad()
def importance_log_likelihood(model, x, k=1000, log_prior=None, batch_size=100, max_rows=20_000):
    """Estimate ``log p(x)`` per image by importance sampling with q as the proposal, under any prior.

    With ``log_prior=None`` (N(0, I)) this is :func:`vaelib.iwae_log_likelihood`, draw for draw: the same
    batches and chunks of at most ``max_rows`` decoded images, so the same seed gives the same numbers.

    Returns:
        ``(N,)`` estimates in nats (a lower bound in expectation, rising with k).
    """
    if not getattr(model, "variational", False):
        raise ValueError(f"the IWAE estimate needs a VAE, whose encoder gives mu and sigma; got a {type(model).__name__}")
    k = _size("k", k)
    model.eval()
    results = []
    for start in range(0, len(x), batch_size):
        xb = model.flatten(x[start:start + batch_size])
        mu, sigma = model.encode(xb)
        chunk = max(1, max_rows // len(xb))
        log_w = [_log_weights(model, xb, mu, sigma, mu + sigma * torch.randn(min(chunk, k - done), *mu.shape),
                              log_prior) for done in range(0, k, chunk)]
        results.append(iwae_bound(torch.cat(log_w)))
    return torch.cat(results)


class IWAE(VAE):
    """A VAE trained on the k-sample importance-weighted bound: ``loss = -L_k`` per image.

    ``IWAE(hidden=(256, 256), latent_dim=2, k=5)``: the networks of :class:`vaelib.VAE`, the same encode,
    decode and sample; only the loss differs. ``k = 1`` is the ELBO with a sampled KL term.
    ``loss`` returns ``"loss"`` (``-L_k``) and, for the curves, the ELBO's two terms averaged over the same
    k samples: ``"recon"`` (``-log p(x | z)``) and ``"kl"`` (closed form). ``recon + kl`` is then minus a
    k-sample ELBO, and in expectation ``loss <= recon + kl``.
    """

    def __init__(self, input_dim=784, hidden=(256,), latent_dim=2, head="softplus", likelihood="bernoulli", k=5):
        VAE.__init__(self, input_dim, hidden, latent_dim, head, likelihood)
        self.config["k"] = _size("k", k)

    @property
    def k(self):
        return self.config["k"]

    def loss(self, x, beta=1.0, labels=None):
        """Per-image ``-L_k``: dict of ``(batch,)`` nats, ``"loss"``, ``"recon"`` and ``"kl"``.

        The bound has no KL weight: ``beta`` must be 1 (what :func:`vaelib.fit` and :func:`vaelib.evaluate` pass).
        """
        if beta != 1:
            raise ValueError(f"the IWAE bound has no KL weight; beta must be 1, got {beta!r}")
        x = self.flatten(x)
        mu, sigma = self.encoder(self.with_labels(x, labels))
        z = mu + sigma * torch.randn(self.k, *mu.shape, device=mu.device)       # (k, batch, latent)
        output = self.decode(z.reshape(-1, z.shape[-1])).view(self.k, len(x), -1)
        log_px_z = _reconstruction_log_likelihood(x.expand(self.k, -1, -1), output, self.likelihood)   # (k, batch)
        log_w = log_px_z + standard_normal_log_density(z) - gaussian_log_density(z, mu, sigma)
        return {"loss": -iwae_bound(log_w), "recon": -log_px_z.mean(0), "kl": _kl_to_standard_normal(mu, sigma)}


@torch.no_grad()
def active_units(model, x, threshold=1e-2):
    """Burda et al.'s activity of each latent dimension: the variance over images of ``E_q[z_j] = mu_j``.

    A dimension is *active* when its activity exceeds ``threshold`` (their 10^-2).

    Returns:
        ``(latent_dim,)`` activities and the number of active dimensions.
    """
    mu, _ = model.encode(model.flatten(x))
    activity = mu.var(0)
    return activity, int((activity > threshold).sum())


def gradient_snr(model, x, k, repeats=20, parts=("encoder", "decoder")):
    """Signal-to-noise ratio of the gradient of the k-sample bound, per parameter (Rainforth et al. 2018).

    Draws the batch's bound ``repeats`` times (fresh samples of z, the same images and weights), takes the
    gradient of its batch mean each time, and returns ``|mean| / std`` over the draws for every parameter
    of each part.

    A weight whose gradient is exactly 0 in every draw (a first-layer weight of a pixel that is 0 in every
    image of the batch) has neither signal nor noise: its SNR is NaN (use ``torch.nanmedian``).

    Returns:
        dict ``{part: (n_params,) SNR}``, e.g. ``{"encoder": ..., "decoder": ...}``.
    """
    k = _size("k", k)
    if _size("repeats", repeats) < 2:
        raise ValueError("repeats must be at least 2 to estimate a standard deviation")
    modules = {part: getattr(model, part) for part in parts}
    x = model.flatten(x)
    grads = {part: [] for part in parts}
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        (-iwae_bound(log_weights(model, x, k)).mean()).backward()
        for part, module in modules.items():
            grads[part].append(torch.cat([p.grad.reshape(-1) for p in module.parameters()]))
    model.zero_grad(set_to_none=True)
    out = {}
    for part, g in grads.items():
        g = torch.stack(g)                                               # (repeats, n_params)
        snr = g.mean(0).abs() / g.std(0)
        out[part] = torch.where((g == 0).all(0), torch.nan, snr)
    return out
