"""A two-layer hierarchical VAE with top-down inference, and its importance-weighted estimate of log p(x).

The model:      p(z2) p(z1 | z2) p(x | z1),   p(z2) = N(0, I),   p(z1 | z2) = N(mu_p(z2), sigma_p(z2)^2)
The encoder:    q(z2 | x) q(z1 | z2, x), inferred top-down: first z2, then z1 given the z2 drawn.

Both encoder Gaussians read one shared bottom-up pass over x, as in the ladder VAE (Sønderby et al. 2016).
As in NVAE (Vahdat & Kautz 2020), q(z1 | z2, x) is written relative to the prior p(z1 | z2): the bottom-up
pass gives a shift ``delta_mu`` and a scale ``delta_sigma``, and

    q(z1 | z2, x) = N(mu_p + delta_mu, (sigma_p * delta_sigma)^2)

Shapes: images ``(batch, 784)``; ``z1`` ``(batch, latent_dims[0])``; ``z2`` ``(batch, latent_dims[1])``.
``vaelib.iwae_log_likelihood`` does not serve this model (it takes p(z1) to be N(0, I)); use
:func:`hierarchical_iwae`.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import _reconstruction_log_likelihood, gaussian_log_density
from .models import Decoder, Model, _size, _sizes, flatten_inputs, mlp

MIN_SIGMA = 1e-4  # added to every softplus standard deviation, so a log sigma stays finite


def kl_between_gaussians(mu_q, sigma_q, mu_p, sigma_p):
    """KL( N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2) ) of diagonal Gaussians, in closed form.

    KL = sum_j [ log(sigma_p / sigma_q) + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2 ]

    Args: four tensors ``(batch, d)``, the sigmas > 0 (standard deviations, not variances).
    Returns: ``(batch,)`` nats, summed over the d dimensions.
    """
    shapes = {tuple(t.shape) for t in (mu_q, sigma_q, mu_p, sigma_p)}
    if len(shapes) != 1:
        raise ValueError(f"mu_q, sigma_q, mu_p and sigma_p must have one shape, got {sorted(shapes)}")
    if not (sigma_q.detach().min() > 0 and sigma_p.detach().min() > 0):
        raise ValueError("sigma_q and sigma_p must be positive standard deviations")
    return (torch.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5).sum(-1)


def relative_to_prior(delta_mu, delta_sigma, mu_p, sigma_p):
    """NVAE's residual form of q(z1 | z2, x): ``(mu_p + delta_mu, sigma_p * delta_sigma)``, shapes kept."""
    return mu_p + delta_mu, sigma_p * delta_sigma


class _Heads(nn.Module):
    """Features ``(batch, n)`` -> ``(mu, sigma)`` of a diagonal Gaussian, each ``(batch, d)``; sigma = softplus + 1e-4."""

    def __init__(self, n, d):
        super().__init__()
        self.mu, self.spread = nn.Linear(n, d), nn.Linear(n, d)

    def forward(self, h):
        return self.mu(h), F.softplus(self.spread(h)) + MIN_SIGMA


class BottomUp(nn.Module):
    """The encoder's shared bottom-up pass: x -> h1 (the hidden layers) -> h2 (``top_hidden`` units).

    ``forward(x)`` -> ``((delta_mu, delta_sigma), (mu2, sigma2))``: the shift and scale of q(z1 | z2, x)
    relative to p(z1 | z2) (read from h1), and q(z2 | x) (read from h2).
    """

    def __init__(self, sizes, latent_dims, top_hidden):
        super().__init__()
        self.input_dim = sizes[0]
        self.body = mlp(sizes, activate_last=True)
        self.up = mlp([sizes[-1], top_hidden], activate_last=True)
        self.z1_delta = _Heads(sizes[-1], latent_dims[0])
        self.z2 = _Heads(top_hidden, latent_dims[1])

    def forward(self, x):
        h1 = self.body(flatten_inputs(x, self.input_dim))
        return self.z1_delta(h1), self.z2(self.up(h1))


class TopDown(nn.Module):
    """The generative model's networks: z2 -> p(z1 | z2) (``prior``), and z1 -> logits of p(x | z1) (``net``)."""

    def __init__(self, sizes, latent_dims, top_hidden):
        super().__init__()
        self.latent_dims = latent_dims
        self.prior_body = mlp([latent_dims[1], top_hidden], activate_last=True)
        self.prior_heads = _Heads(top_hidden, latent_dims[0])
        self.net = Decoder(latent_dims[0], sizes)

    def prior(self, z2):
        """``z2`` ``(batch, d2)`` -> ``(mu_p, sigma_p)`` of p(z1 | z2), each ``(batch, d1)``."""
        return self.prior_heads(self.prior_body(flatten_inputs(z2, self.latent_dims[1])))

    def forward(self, z1):
        return self.net(z1)


class HierarchicalVAE(Model):
    """Two stochastic layers: p(z2) p(z1 | z2) p(x | z1), inferred top-down by q(z2 | x) q(z1 | z2, x).

    ``HierarchicalVAE(hidden=[400], latent_dims=[20, 8])``: the 784-400-20 VAE of notebook 05 (``vae_20d``),
    with a second layer z2 of 8 dimensions above z1, reached through ``top_hidden`` units each way.
    Trained alone, a top layer can collapse (q(z2 | x) = p(z2), kl2 = 0): check ``"kl2"``.

    Protocol (see :class:`vaelib.models.Model`): ``latent_dim`` is z1's size; ``decode(z1)`` gives logits;
    ``encode(x)`` gives ``(mu, sigma)`` of q(z1 | z2, x) at z2 = the mean of q(z2 | x); ``loss`` adds the two
    KLs, and returns each (``"kl1"``, ``"kl2"``); ``sample`` draws z2, then z1 given z2, then decodes z1.
    """

    standard_prior = False  # p(z1) is p(z1 | z2) averaged over z2: vaelib.iwae_log_likelihood refuses it

    def __init__(self, input_dim=784, hidden=(400,), latent_dims=(20, 8), top_hidden=64, likelihood="bernoulli"):
        latent_dims = _sizes("latent_dims", latent_dims)
        if len(latent_dims) != 2:
            raise ValueError(f"latent_dims must be two sizes, [z1, z2] (the lower layer first), got {latent_dims}")
        super().__init__(input_dim=_size("input_dim", input_dim), hidden=_sizes("hidden", hidden),
                         latent_dims=latent_dims, top_hidden=_size("top_hidden", top_hidden), likelihood=likelihood)

    def networks(self, input_dim, hidden, latent_dims, top_hidden, likelihood):
        return (BottomUp([input_dim, *hidden], latent_dims, top_hidden),
                TopDown([*hidden[::-1], input_dim], latent_dims, top_hidden))

    @property
    def latent_dim(self):
        return self.config["latent_dims"][0]

    def infer(self, x, eps2=None, eps1=None):
        """Top-down inference for checked images ``x`` ``(batch, D)``: draw z2 ~ q(z2 | x), then z1 ~ q(z1 | z2, x).

        ``eps2``, ``eps1``: the standard-normal noise to use (default: fresh). Returns a dict of ``(batch, d)``
        tensors: ``z2``, ``mu2``, ``sigma2`` (q(z2 | x)), ``z1``, ``mu1``, ``sigma1`` (q(z1 | z2, x)) and
        ``mu_p``, ``sigma_p`` (p(z1 | z2)).
        """
        return self.top_down(self.encoder(x), eps2, eps1)

    def top_down(self, bottom_up, eps2=None, eps1=None):
        """The top-down half of :meth:`infer`, from the encoder's output ``((delta_mu, delta_sigma), (mu2, sigma2))``."""
        (delta_mu, delta_sigma), (mu2, sigma2) = bottom_up
        z2 = mu2 + sigma2 * (torch.randn_like(sigma2) if eps2 is None else eps2)
        mu_p, sigma_p = self.decoder.prior(z2)
        mu1, sigma1 = relative_to_prior(delta_mu, delta_sigma, mu_p, sigma_p)
        z1 = mu1 + sigma1 * (torch.randn_like(sigma1) if eps1 is None else eps1)
        return {"z2": z2, "mu2": mu2, "sigma2": sigma2, "z1": z1, "mu1": mu1, "sigma1": sigma1,
                "mu_p": mu_p, "sigma_p": sigma_p}

    def encode(self, x, labels=None):
        """Images -> ``(mu, sigma)`` of q(z1 | z2, x) at z2 = the mean of q(z2 | x), each ``(batch, latent_dims[0])``."""
        x = self.with_labels(self.flatten(x), labels)
        (delta_mu, delta_sigma), (mu2, _) = self.encoder(x)
        return relative_to_prior(delta_mu, delta_sigma, *self.decoder.prior(mu2))

    def decode(self, z, labels=None):
        """z1 ``(batch, latent_dims[0])`` -> ``(batch, D)`` logits of p(x | z1) (means if Gaussian)."""
        return self.decoder(self.with_labels(flatten_inputs(z, self.latent_dim), labels))

    def loss(self, x, beta=1.0, labels=None):
        """Per-example negative ELBO, ``(batch,)`` nats: ``"loss"`` = ``"recon"`` + beta * ``"kl"``, ``"kl"`` = ``"kl1"`` + ``"kl2"``.

        kl2 = KL(q(z2 | x) || N(0, I)) in closed form; kl1 = KL(q(z1 | z2, x) || p(z1 | z2)) in closed form
        at the one z2 drawn (a one-sample estimate of its expectation over q(z2 | x)).
        """
        x = self.with_labels(self.flatten(x), labels)
        s = self.infer(x)
        recon = -_reconstruction_log_likelihood(x, self.decoder(s["z1"]), self.likelihood)
        kl2 = kl_between_gaussians(s["mu2"], s["sigma2"], torch.zeros_like(s["mu2"]), torch.ones_like(s["sigma2"]))
        kl1 = kl_between_gaussians(s["mu1"], s["sigma1"], s["mu_p"], s["sigma_p"])
        kl = kl1 + kl2
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "kl1": kl1, "kl2": kl2}

    @torch.no_grad()
    def generate(self, z2, eps1=None, temperature=1.0):
        """``z2`` ``(n, d2)`` -> ``(n, D)`` images in [0, 1]: z1 = mu_p + temperature * sigma_p * eps1 from p(z1 | z2)
        (``eps1`` default: fresh noise), decoded to the decoder's mean."""
        mu_p, sigma_p = self.decoder.prior(z2)
        eps1 = torch.randn_like(mu_p) if eps1 is None else eps1
        return self.decode_images(mu_p + temperature * sigma_p * eps1)

    @torch.no_grad()
    def sample(self, n, temperature=1.0, labels=None):
        """``n`` new images ``(n, D)``: z2 ~ N(0, temperature^2 I), then z1 from p(z1 | z2) (same temperature)."""
        if isinstance(n, bool) or not hasattr(n, "__index__") or n < 1 or not 0 <= temperature < float("inf"):
            raise ValueError(f"need a whole number n >= 1 and a finite temperature >= 0, got n={n!r}, "
                             f"temperature={temperature!r}")
        self.with_labels(torch.zeros(n, 1), labels)
        device = next(self.parameters()).device
        z2 = temperature * torch.randn(n, self.config["latent_dims"][1], device=device)
        return self.generate(z2, temperature=temperature)

    def log_weights(self, x, k):
        """``(k, batch)`` log importance weights log p(x, z1, z2) - log q(z1, z2 | x), z1 and z2 drawn top-down
        from q, ``k`` draws for each checked image of ``x`` ``(batch, D)``."""
        b = len(x)
        xk = x.repeat(k, 1)                                        # (k * b, D): draw i of every image, then i + 1
        (delta_mu, delta_sigma), (mu2, sigma2) = self.encoder(x)   # one bottom-up pass, shared by the k draws
        s = self.top_down(((delta_mu.repeat(k, 1), delta_sigma.repeat(k, 1)), (mu2.repeat(k, 1), sigma2.repeat(k, 1))))
        log_px = _reconstruction_log_likelihood(xk, self.decoder(s["z1"]), self.likelihood)
        log_p = (gaussian_log_density(s["z2"], torch.zeros_like(s["z2"]), torch.ones_like(s["z2"]))
                 + gaussian_log_density(s["z1"], s["mu_p"], s["sigma_p"]))
        log_q = gaussian_log_density(s["z2"], s["mu2"], s["sigma2"]) + gaussian_log_density(s["z1"], s["mu1"], s["sigma1"])
        return (log_px + log_p - log_q).view(k, b)


@torch.no_grad()
def hierarchical_iwae(model, x, k=1000, batch_size=100, max_rows=20_000):
    """Importance-weighted estimate of log p(x) (Burda et al. 2015) for a :class:`HierarchicalVAE`, per image.

    log p(x) ~= log (1/k) sum_i p(x | z1_i) p(z1_i | z2_i) p(z2_i) / (q(z2_i | x) q(z1_i | z2_i, x)),
    each (z1_i, z2_i) drawn top-down from q. With k = 1 its expectation is the ELBO.

    Args:
        x: ``(N, 784)`` or ``(N, 1, 28, 28)`` images in [0, 1]; k: importance samples per image.
    Returns:
        ``(N,)`` estimates of log p(x) in nats (higher is better).
    """
    if not isinstance(model, HierarchicalVAE):
        raise ValueError(f"hierarchical_iwae needs a HierarchicalVAE, got a {type(model).__name__} "
                         "(for a one-layer VAE use vaelib.iwae_log_likelihood)")
    if isinstance(k, bool) or not hasattr(k, "__index__") or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    model.eval()
    device = next(model.parameters()).device
    results = []
    for start in range(0, len(x), batch_size):
        xb = model.flatten(x[start:start + batch_size].to(device))
        chunk = max(1, max_rows // len(xb))
        log_w = torch.cat([model.log_weights(xb, min(chunk, k - done)) for done in range(0, k, chunk)])
        results.append(torch.logsumexp(log_w, dim=0) - math.log(k))
    return torch.cat(results)
