"""Richer posteriors q(z | x): a full-covariance Gaussian and a small normalizing flow, and the 2-D grid that measures them.

A *family* of posteriors turns a vector of unconstrained numbers per example, ``params`` ``(batch, size)``,
into a distribution over codes that can be sampled with its log-density and evaluated anywhere:

* :class:`DiagonalGaussian`: ``[mu, rho]``, ``sigma = softplus(rho)``: the family of every VAE so far.
* :class:`FullCovarianceGaussian`: ``[mu, rho, off]``, ``z = mu + L eps`` with ``L`` lower triangular, its
  diagonal ``softplus(rho)`` and below it ``off``: any covariance ``L L^T``.
* :class:`CouplingFlow`: a diagonal Gaussian pushed through affine coupling steps (Dinh et al. 2017), each
  a tiny MLP whose weights are part of ``params`` (the encoder outputs them for each image).

The encoder of :class:`FullCovVAE` and :class:`FlowVAE` outputs ``params`` with one linear head, so the same
family can also be fitted to one image alone (optimising ``params`` directly): the gaps of notebook 04.
For a 2-D code, :func:`posterior_grid` computes log p(x) and the true posterior on a lattice of codes, from
which :func:`fit_posterior` fits each image's own q without calling the decoder.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import _kl_to_standard_normal, _reconstruction_log_likelihood, gaussian_log_density
from .models import VAE, Decoder, Model, _size, _sizes, flatten_inputs, mlp

#: One coupling step scales a coordinate by at most exp(S_BOUND) (s = S_BOUND * tanh(raw / S_BOUND)).
S_BOUND = 3.0


def _check_params(params, size, name):
    if not torch.is_tensor(params) or params.dim() != 2 or params.shape[1] != size:
        shape = tuple(params.shape) if torch.is_tensor(params) else type(params).__name__
        raise ValueError(f"{name} expects params of shape (batch, {size}), got {shape}")


def _check_codes(z, params, latent_dim):
    if not torch.is_tensor(z) or z.dim() < 2 or z.shape[-1] != latent_dim or z.shape[-2] != params.shape[0]:
        shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
        raise ValueError(f"expected codes of shape (..., {params.shape[0]}, {latent_dim}) "
                         f"(..., batch, latent_dim), got {shape}")


def inverse_softplus(sigma):
    """``rho`` with ``softplus(rho) = sigma`` (sigma > 0): from a standard deviation to an unconstrained number."""
    return sigma + torch.log(-torch.expm1(-sigma))


class DiagonalGaussian:
    """q = N(mu, diag(sigma^2)); ``params = [mu, rho]`` ``(batch, 2 d)``, ``sigma = softplus(rho)``."""

    def __init__(self, latent_dim=2):
        self.latent_dim = _size("latent_dim", latent_dim)
        self.size = 2 * self.latent_dim

    def split(self, params):
        """-> ``(mu, sigma)``, each ``(batch, d)``."""
        _check_params(params, self.size, type(self).__name__)
        mu, rho = params.split(self.latent_dim, dim=-1)
        return mu, F.softplus(rho)

    def sample(self, params, eps):
        """``eps`` ``(k, batch, d)`` -> ``(z, log_q)``: codes ``(k, batch, d)`` and log q(z) ``(k, batch)``."""
        mu, sigma = self.split(params)
        z = mu + sigma * eps
        return z, gaussian_log_density(z, mu, sigma)

    def log_prob(self, params, z):
        """log q(z) ``(..., batch)`` of codes ``z`` ``(..., batch, d)``."""
        mu, sigma = self.split(params)
        _check_codes(z, params, self.latent_dim)
        return gaussian_log_density(z, mu, sigma)


def scale_tril(rho, off):
    """Lower-triangular ``L`` ``(batch, d, d)``: ``softplus(rho)`` ``(batch, d)`` on the diagonal and
    ``off`` ``(batch, d (d - 1) / 2)`` below it, row by row."""
    d = rho.shape[-1]
    rows, cols = torch.tril_indices(d, d, offset=-1)
    below = torch.zeros(*rho.shape, d, dtype=rho.dtype, device=rho.device)
    below[..., rows, cols] = off
    return below + torch.diag_embed(F.softplus(rho))


def full_covariance_log_density(z, mu, L):
    """log N(z; mu, L L^T) for codes ``z`` ``(..., batch, d)``, ``mu`` ``(batch, d)``, ``L`` ``(batch, d, d)``.

    With ``u = L^{-1} (z - mu)``: ``-|u|^2 / 2 - sum_j log L_jj - d/2 log(2 pi)``. Returns ``(..., batch)``.
    """
    diff = z - mu                                                           # (..., batch, d)
    u = []                                                                  # u = L^{-1} diff, row by row
    for i in range(mu.shape[-1]):
        done = sum((L[:, i, j] * u[j] for j in range(i)), torch.zeros_like(diff[..., i]))
        u.append((diff[..., i] - done) / L[:, i, i])
    u = torch.stack(u, -1)
    log_diag = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (u ** 2).sum(-1) - log_diag - 0.5 * mu.shape[-1] * math.log(2 * math.pi)


def kl_full_covariance_to_standard_normal(mu, L):
    """KL( N(mu, L L^T) || N(0, I) ) = 1/2 (trace(L L^T) + |mu|^2 - d - log det(L L^T)), ``(batch,)`` nats."""
    log_det = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * ((L ** 2).sum((-2, -1)) + (mu ** 2).sum(-1) - mu.shape[-1] - log_det)


class FullCovarianceGaussian:
    """q = N(mu, L L^T), ``z = mu + L eps``; ``params = [mu, rho, off]`` ``(batch, 2 d + d (d - 1) / 2)``."""

    def __init__(self, latent_dim=2):
        self.latent_dim = _size("latent_dim", latent_dim)
        self.size = 2 * self.latent_dim + self.latent_dim * (self.latent_dim - 1) // 2

    def split(self, params):
        """-> ``(mu, L)``: ``(batch, d)`` and lower-triangular ``(batch, d, d)``."""
        _check_params(params, self.size, type(self).__name__)
        d = self.latent_dim
        return params[:, :d], scale_tril(params[:, d:2 * d], params[:, 2 * d:])

    def sample(self, params, eps):
        """``eps`` ``(k, batch, d)`` -> ``(z, log_q)``, ``(k, batch, d)`` and ``(k, batch)``."""
        mu, L = self.split(params)
        z = mu + (L @ eps.unsqueeze(-1)).squeeze(-1)
        log_diag = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        return z, gaussian_log_density(eps, torch.zeros_like(eps), torch.ones_like(eps)) - log_diag

    def log_prob(self, params, z):
        mu, L = self.split(params)
        _check_codes(z, params, self.latent_dim)
        return full_covariance_log_density(z, mu, L)


def coupling_size(latent_dim, hidden):
    """How many numbers one coupling step's conditioner takes: a ``d_a -> hidden -> 2 d_b`` MLP, biases included."""
    d_a = latent_dim // 2
    d_b = latent_dim - d_a
    return d_a * hidden + hidden + hidden * 2 * d_b + 2 * d_b


def coupling_shift_and_log_scale(z_a, step_params, hidden, d_b):
    """The conditioner of one coupling step: ``z_a`` ``(..., batch, d_a)`` -> ``(s, t)``, each ``(..., batch, d_b)``.

    A one-hidden-layer ReLU MLP whose weights are ``step_params`` ``(batch, coupling_size)``, one set per
    example; ``s = S_BOUND * tanh(raw / S_BOUND)`` keeps each scale ``exp(s)`` within ``exp(+-S_BOUND)``.
    """
    batch, d_a = step_params.shape[0], z_a.shape[-1]
    w1, b1, w2, b2 = step_params.split([d_a * hidden, hidden, hidden * 2 * d_b, 2 * d_b], dim=-1)
    lead = z_a.shape[:-2]
    za = z_a.reshape(-1, batch, d_a).transpose(0, 1)                                # (batch, m, d_a), m codes each
    h = torch.relu(torch.baddbmm(b1.unsqueeze(1), za, w1.view(batch, d_a, hidden)))  # (batch, m, hidden)
    out = torch.baddbmm(b2.unsqueeze(1), h, w2.view(batch, hidden, 2 * d_b))          # (batch, m, 2 d_b)
    raw, t = out.transpose(0, 1).reshape(*lead, batch, 2 * d_b).chunk(2, dim=-1)
    return S_BOUND * torch.tanh(raw / S_BOUND), t


def coupling_step(z, step_params, hidden, flip=False, inverse=False):
    """One affine coupling step (Dinh et al. 2017) on codes ``z`` ``(..., batch, d)``.

    The first ``d // 2`` coordinates ``z_a`` pass unchanged (the last ones if ``flip``); the others become
    ``z_b * exp(s(z_a)) + t(z_a)``. The Jacobian is triangular, so log |det| = sum of ``s``.
    ``inverse=True`` undoes it: ``z_b = (z_b' - t) * exp(-s)``, log |det| = -sum of ``s``.

    Returns:
        ``(z_new, log_det)``: ``(..., batch, d)`` and ``(..., batch)``.
    """
    d = z.shape[-1]
    d_a = d // 2
    if flip:
        z_b, z_a = z.split([d - d_a, d_a], dim=-1)
    else:
        z_a, z_b = z.split([d_a, d - d_a], dim=-1)
    s, t = coupling_shift_and_log_scale(z_a, step_params, hidden, d - d_a)
    if inverse:
        z_b, log_det = (z_b - t) * torch.exp(-s), -s.sum(-1)
    else:
        z_b, log_det = z_b * torch.exp(s) + t, s.sum(-1)
    return (torch.cat([z_b, z_a], -1) if flip else torch.cat([z_a, z_b], -1)), log_det


class CouplingFlow:
    """q: ``z_0 ~ N(mu, diag(sigma^2))``, then ``steps`` affine coupling steps, alternating which half moves.

    ``params = [mu, rho, step 1, ..., step K]`` ``(batch, 2 d + K * coupling_size(d, hidden))``.
    log q(z_K) = log N(z_0; mu, sigma) - sum of the steps' log |det| (the change of variables).
    """

    def __init__(self, latent_dim=2, steps=4, hidden=8):
        self.latent_dim = _size("latent_dim", latent_dim)
        if self.latent_dim < 2:
            raise ValueError("a coupling step needs a code of at least 2 dimensions (one half moves the other)")
        self.steps, self.hidden = _size("steps", steps), _size("hidden", hidden)
        self.step_size = coupling_size(self.latent_dim, self.hidden)
        self.size = 2 * self.latent_dim + self.steps * self.step_size

    def split(self, params):
        """-> ``(mu, sigma, [step params] * steps)``."""
        _check_params(params, self.size, type(self).__name__)
        d = self.latent_dim
        mu, rho, *steps = params.split([d, d] + [self.step_size] * self.steps, dim=-1)
        return mu, F.softplus(rho), steps

    def forward_flow(self, params, z0):
        """``z_0`` ``(..., batch, d)`` -> ``(z_K, sum of log |det|)``."""
        _, _, steps = self.split(params)
        z, total = z0, 0.0
        for i, step in enumerate(steps):
            z, log_det = coupling_step(z, step, self.hidden, flip=i % 2 == 1)
            total = total + log_det
        return z, total

    def sample(self, params, eps):
        """``eps`` ``(k, batch, d)`` -> ``(z, log_q)``, ``(k, batch, d)`` and ``(k, batch)``."""
        mu, sigma, _ = self.split(params)
        z0 = mu + sigma * eps
        z, log_det = self.forward_flow(params, z0)
        return z, gaussian_log_density(z0, mu, sigma) - log_det

    def log_prob(self, params, z):
        """log q(z) ``(..., batch)``: the steps undone in reverse order, then the Gaussian's density."""
        mu, sigma, steps = self.split(params)
        _check_codes(z, params, self.latent_dim)
        total = 0.0
        for i in reversed(range(self.steps)):
            z, log_det = coupling_step(z, steps[i], self.hidden, flip=i % 2 == 1, inverse=True)
            total = total + log_det
        return gaussian_log_density(z, mu, sigma) + total


class FamilyEncoder(nn.Module):
    """An MLP body, then one linear head to a family's ``params`` ``(batch, family.size)``.

    For a flow, the head starts with the steps' output weights at zero, so each coupling step starts as the
    identity, and the steps' weights are the head's outputs times ``FLOW_SCALE``: a step's weights multiply
    one another, and at full scale one large update of the head could blow a code far away (trained by
    vae_2d's recipe at full scale, the held-out loss jumped from 154 to 242 nats at the peak learning rate).
    """

    FLOW_SCALE = 0.03

    def __init__(self, sizes, family):
        super().__init__()
        self.input_dim = sizes[0]
        self.body = mlp(sizes, activate_last=True)
        self.head = nn.Linear(sizes[-1], family.size)
        scale = torch.ones(family.size)
        if isinstance(family, CouplingFlow):
            d, h = family.latent_dim, family.hidden
            d_a = d // 2
            scale[2 * d:] = self.FLOW_SCALE
            with torch.no_grad():
                for i in range(family.steps):
                    start = 2 * d + i * family.step_size + d_a * h + h        # w2 and b2 of step i
                    self.head.weight[start:start + family.step_size - d_a * h - h] = 0
                    self.head.bias[start:start + family.step_size - d_a * h - h] = 0
        self.register_buffer("scale", scale, persistent=False)

    def forward(self, x):
        return self.head(self.body(flatten_inputs(x, self.input_dim))) * self.scale


class _FamilyVAE(VAE):
    """A VAE whose q(z | x) is ``self.family`` with ``params = self.encoder(x)``; the decoder is :class:`VAE`'s.

    ``encode(x)`` gives ``(mu, sigma)``: for the Gaussians, q's mean and the standard deviation of each
    coordinate; for the flow, those of its starting Gaussian. ``code(x)`` is q's mean (the flow: ``mu``
    carried through the steps). ``posterior_params(x)`` gives the family's ``params``.
    ``loss`` draws one ``z`` from q; the KL term is closed-form for a Gaussian, else ``log q(z) - log p(z)``.
    """

    def networks(self, input_dim, hidden, latent_dim, likelihood, **family):
        self.family = self.make_family(latent_dim, **family)
        return FamilyEncoder([input_dim, *hidden], self.family), Decoder(latent_dim, [*hidden[::-1], input_dim])

    def posterior_params(self, x, labels=None):
        """Images -> q's ``params`` ``(batch, family.size)``."""
        return self.encoder(self.with_labels(self.flatten(x), labels))

    def forward(self, x, labels=None):
        """Returns ``(output, mu, sigma)``: decoder output for one z drawn from q, and :meth:`encode`'s pair."""
        z, _ = self.sample_posterior(x)
        return (self.decode(z[0], labels), *self.encode(x, labels))

    def sample_posterior(self, x, k=1):
        """``k`` codes from q(z | x) per image and their log q: ``(k, batch, d)`` and ``(k, batch)``."""
        params = self.posterior_params(x)
        return self.family.sample(params, torch.randn(k, len(params), self.latent_dim, device=params.device))

    def loss(self, x, beta=1.0, labels=None):
        """Per-example negative ELBO: dict of ``(batch,)`` nats, ``"loss"``, ``"recon"`` and ``"kl"``."""
        x = self.flatten(x)
        params = self.encoder(self.with_labels(x, labels))
        eps = torch.randn(len(x), self.latent_dim, device=x.device)
        z, log_q = self.family.sample(params, eps)
        recon = -_reconstruction_log_likelihood(x, self.decode(z, labels), self.likelihood)
        kl = self.closed_form_kl(params)
        if kl is None:
            kl = log_q - gaussian_log_density(z, torch.zeros_like(z), torch.ones_like(z))
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


class FullCovVAE(_FamilyVAE):
    """A VAE whose q(z | x) = N(mu, L L^T) has a full covariance: the encoder also outputs the Cholesky factor L.

    ``FullCovVAE(hidden=[256, 256], latent_dim=2)`` is ``vae_2d``'s network with one more output per pair of
    coordinates (the entries below L's diagonal).
    """

    def __init__(self, input_dim=784, hidden=(256,), latent_dim=2, likelihood="bernoulli"):
        Model.__init__(self, input_dim=_size("input_dim", input_dim), hidden=_sizes("hidden", hidden),
                       latent_dim=_size("latent_dim", latent_dim), likelihood=likelihood)

    def make_family(self, latent_dim):
        return FullCovarianceGaussian(latent_dim)

    def posterior(self, x):
        """Images -> ``(mu, L)``: ``(batch, d)`` and the lower-triangular ``(batch, d, d)``."""
        return self.family.split(self.posterior_params(x))

    def encode(self, x, labels=None):
        mu, L = self.family.split(self.posterior_params(x, labels))
        return mu, L.pow(2).sum(-1).sqrt()      # sqrt(diag(L L^T)): each coordinate's standard deviation

    def closed_form_kl(self, params):
        return kl_full_covariance_to_standard_normal(*self.family.split(params))


class FlowVAE(_FamilyVAE):
    """A VAE whose q(z | x) is a diagonal Gaussian pushed through ``steps`` affine coupling steps; the encoder
    outputs the Gaussian's ``mu``, ``sigma`` and every step's weights (``flow_hidden`` hidden units each)."""

    def __init__(self, input_dim=784, hidden=(256,), latent_dim=2, steps=4, flow_hidden=8, likelihood="bernoulli"):
        Model.__init__(self, input_dim=_size("input_dim", input_dim), hidden=_sizes("hidden", hidden),
                       latent_dim=_size("latent_dim", latent_dim), steps=_size("steps", steps),
                       flow_hidden=_size("flow_hidden", flow_hidden), likelihood=likelihood)

    def make_family(self, latent_dim, steps, flow_hidden):
        return CouplingFlow(latent_dim, steps, flow_hidden)

    def encode(self, x, labels=None):
        mu, sigma, _ = self.family.split(self.posterior_params(x, labels))
        return mu, sigma

    def code(self, x, labels=None):
        params = self.posterior_params(x, labels)
        return self.family.forward_flow(params, self.family.split(params)[0])[0]

    def closed_form_kl(self, params):
        return None


def family_of(model):
    """The posterior family of a vaelib VAE: its ``family``, or :class:`DiagonalGaussian` for a plain VAE."""
    if not getattr(model, "variational", False):
        raise ValueError(f"a posterior family needs a VAE; got a {type(model).__name__}")
    return getattr(model, "family", None) or DiagonalGaussian(model.latent_dim)


def posterior_params(model, x):
    """The ``params`` ``(batch, family.size)`` of q(z | x) for images ``x``, for any unconditional vaelib VAE."""
    if hasattr(model, "posterior_params"):
        return model.posterior_params(x)
    mu, sigma = model.encode(x)
    return torch.cat([mu, inverse_softplus(sigma)], dim=-1)


def log_joint(model, x, z):
    """log p(x | z) + log p(z) of images ``x`` ``(batch, D)`` at codes ``z`` ``(..., batch, d)`` -> ``(..., batch)``."""
    x = model.flatten(x)
    logits = model.decode(z.reshape(-1, z.shape[-1])).view(*z.shape[:-1], -1)
    return (_reconstruction_log_likelihood(x.expand_as(logits), logits, model.likelihood)
            + gaussian_log_density(z, torch.zeros_like(z), torch.ones_like(z)))


@torch.no_grad()
def log_weights(model, x, k=1000, params=None, family=None, chunk=100):
    """log w = log p(x, z) - log q(z | x) for ``k`` codes z ~ q(z | x) of each image: ``(k, batch)``.

    Their mean estimates the ELBO; ``logsumexp - log k`` is the IWAE estimate of log p(x) (Burda et al. 2015),
    with q the model's own (``params`` and ``family`` override it, e.g. with a q fitted to each image).
    """
    family = family_of(model) if family is None else family
    params = posterior_params(model, x) if params is None else params
    out = []
    for start in range(0, k, chunk):
        z, log_q = family.sample(params, torch.randn(min(chunk, k - start), len(params), family.latent_dim))
        out.append(log_joint(model, x, z) - log_q)
    return torch.cat(out)


def _lattice(center, A, n, width):
    """``n x n`` codes ``center + A u``, ``u`` on a square lattice in [-width, width]^2: ``(n * n, batch, 2)``
    and the area of one cell ``(batch,)``."""
    u1d = torch.linspace(-width, width, n)
    u = torch.stack(torch.meshgrid(u1d, u1d, indexing="xy"), -1).reshape(-1, 2)       # (n * n, 2)
    z = center + torch.einsum("bij,gj->gbi", A, u)                                    # (n * n, batch, 2)
    return z, torch.det(A).abs() * (u1d[1] - u1d[0]) ** 2


@torch.no_grad()
def posterior_grid(model, x, n=32, width=6.0, extent=6.0, coarse=241, batch_size=25):
    """The true posterior of a 2-D code by brute force, on a lattice fitted to it, for images ``x`` ``(batch, D)``.

    First one square grid of ``coarse x coarse`` codes over [-extent, extent]^2, decoded once for all the
    images, finds each posterior's mean and covariance; then an ``n x n`` lattice for each image along the
    axes of the covariance of that posterior and q(z | x) mixed half and half (so it holds both), ``width``
    of its standard deviations each way (widened by a coarse cell's own, h^2 / 12, so that a posterior
    narrower than a cell is still held).

    Returns:
        dict: ``"z"`` ``(n * n, batch, 2)`` the codes, ``"area"`` ``(batch,)`` the area of one cell,
        ``"log_joint"`` ``(n * n, batch)`` log p(x, z), ``"log_px"`` ``(batch,)`` log p(x) =
        log sum_z p(x, z) * area, and ``"edge"`` ``(batch,)`` the posterior's mass on the lattice's outer ring
        (small: the lattice holds it); ``"center"`` ``(batch, 2)``, ``"A"`` ``(batch, 2, 2)`` and ``"width"``: the
        lattice's codes are ``center + A u`` with ``u`` on the square ``[-width, width]^2``.
    """
    if model.latent_dim != 2:
        raise ValueError(f"the grid needs a 2-D code, got latent_dim={model.latent_dim}")
    if model.likelihood != "bernoulli":
        raise ValueError(f"posterior_grid needs a Bernoulli decoder, got likelihood={model.likelihood!r}")
    x = model.flatten(x)
    axis = torch.linspace(-extent, extent, coarse)
    zg = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)      # (coarse^2, 2)
    log_prior = gaussian_log_density(zg, torch.zeros_like(zg), torch.ones_like(zg))
    columns = []
    for chunk in zg.split(10_000):       # log p(x | z) = sum_i x_i l_i - softplus(l_i), all images at once
        logits = model.decode(chunk)                                                   # (chunk, D)
        columns.append(x @ logits.T - F.softplus(logits).sum(-1))
    w = torch.softmax(torch.cat(columns, 1) + log_prior, 1)                            # (batch, coarse^2)
    p_mean = w @ zg
    p_cov = torch.einsum("bg,gi,gj->bij", w, zg, zg) - _outer(p_mean)
    h = float(axis[1] - axis[0])
    # q(z | x) too: a narrow mode can slip between the coarse codes, and q may have found it
    zq, _ = family_of(model).sample(posterior_params(model, x),
                                    torch.randn(256, len(x), 2, generator=torch.Generator().manual_seed(0)))
    q_mean = zq.mean(0)
    q_cov = torch.einsum("kbi,kbj->bij", zq - q_mean, zq - q_mean) / len(zq)
    mean = 0.5 * (p_mean + q_mean)                            # the mixture of both, half and half
    cov = 0.5 * (p_cov + q_cov) + 0.25 * _outer(p_mean - q_mean) + h ** 2 / 12 * torch.eye(2)
    A = torch.linalg.cholesky(cov)
    parts = []
    for i in range(0, len(x), batch_size):      # n * n decoded images of every image at once would be large
        z, area = _lattice(mean[i:i + batch_size], A[i:i + batch_size], n, width)
        parts.append((z, area, log_joint(model, x[i:i + batch_size], z)))
    z, area, lj = (torch.cat(t, dim=1 if t[0].dim() > 1 else 0) for t in zip(*parts))
    ring = torch.zeros(n, n, dtype=torch.bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    edge = torch.softmax(lj, 0)[ring.reshape(-1)].sum(0)
    return {"z": z, "area": area, "log_joint": lj, "log_px": torch.logsumexp(lj, 0) + torch.log(area), "edge": edge,
            "center": mean, "A": A, "width": width}


def _outer(v):
    return v.unsqueeze(-1) * v.unsqueeze(-2)


#: How steeply :func:`interpolate_log_joint` falls beyond the lattice (nats per squared unit of its axes).
OUTSIDE_PENALTY = 50.0


def interpolate_log_joint(grid, z):
    """log p(x, z) at any codes ``z`` ``(..., batch, 2)``, interpolated (bicubic) between the lattice's codes of
    :func:`posterior_grid`. Beyond the lattice, where the posterior has next to no mass, the value at its edge
    minus ``OUTSIDE_PENALTY`` times the squared distance past it (in the lattice's units), so that a q being
    fitted cannot gain by spreading out there. Returns ``(..., batch)``, differentiable in ``z``."""
    n, batch = math.isqrt(len(grid["z"])), grid["z"].shape[1]
    lead = z.shape[:-2]
    u = torch.einsum("bij,...bj->...bi", torch.linalg.inv(grid["A"]), z - grid["center"]) / grid["width"]
    u = u.reshape(-1, batch, 2).transpose(0, 1).unsqueeze(1)                          # (batch, 1, m, 2) in [-1, 1]
    image = grid["log_joint"].view(n, n, batch).permute(2, 0, 1).unsqueeze(1)        # (batch, 1, n, n): rows = u_2
    out = F.grid_sample(image, u, mode="bicubic", padding_mode="border", align_corners=True)[:, 0, 0]   # (batch, m)
    outside = (F.relu(u[:, 0].abs() - 1) * grid["width"]).pow(2).sum(-1)      # squared distance past the edge
    return (out - OUTSIDE_PENALTY * outside).transpose(0, 1).reshape(*lead, batch)


def posterior_moments(grid):
    """Mean ``(batch, 2)`` and covariance ``(batch, 2, 2)`` of each true posterior, from :func:`posterior_grid`."""
    w = torch.softmax(grid["log_joint"], 0)                                           # (n * n, batch)
    mean = (w[..., None] * grid["z"]).sum(0)
    d = grid["z"] - mean
    return mean, torch.einsum("gb,gbi,gbj->bij", w, d, d)


def moment_start(family, grid, seed=0):
    """``params`` ``(batch, family.size)`` of a q with each true posterior's mean and covariance: a start for
    :func:`fit_posterior`. A diagonal Gaussian takes the variances only; a flow starts as that diagonal Gaussian,
    its steps the identity (output weights 0, first-layer weights random from ``seed``, so that they can learn)."""
    mean, cov = posterior_moments(grid)
    if isinstance(family, FullCovarianceGaussian):
        L = torch.linalg.cholesky(cov)
        rows, cols = torch.tril_indices(2, 2, offset=-1)
        return torch.cat([mean, inverse_softplus(L.diagonal(dim1=-2, dim2=-1)), L[:, rows, cols]], -1)
    diagonal = torch.cat([mean, inverse_softplus(cov.diagonal(dim1=-2, dim2=-1).sqrt())], -1)
    if not isinstance(family, CouplingFlow):
        return diagonal
    g = torch.Generator().manual_seed(seed)
    steps = []
    for _ in range(family.steps):
        first = torch.randn(len(mean), family.hidden + family.hidden, generator=g)   # (d_a = 1) w1, b1
        steps.append(torch.cat([first, torch.zeros(len(mean), family.step_size - first.shape[1])], -1))
    return torch.cat([diagonal, *steps], -1)


def fit_posterior(family, params, grid, steps=200, lr=None, samples=32, seed=0):
    """Each image's own q: Adam on minus its ELBO from ``params`` ``(batch, size)``, the decoder fixed.

    ``lr`` defaults to 0.05 for a Gaussian and 0.003 for a flow, whose step weights multiply one another (at
    0.05 or 0.01 the fits of some digits diverged).
    Each step draws ``samples`` fresh codes from every q and reads log p(x, z) off the lattice
    (:func:`interpolate_log_joint`) instead of decoding them, so a step costs no decoder call.
    Returns the fitted ``params`` (detached). All images at once; each one's ELBO depends on its row only.
    Score the result with the decoder itself (:func:`log_weights` with ``params=``), not with the lattice.
    """
    g = torch.Generator().manual_seed(seed)
    lr = (0.003 if isinstance(family, CouplingFlow) else 0.05) if lr is None else lr
    params = params.detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([params], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for _ in range(steps):
        z, log_q = family.sample(params, torch.randn(samples, len(params), family.latent_dim, generator=g))
        loss = -(interpolate_log_joint(grid, z) - log_q).mean(0).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return params.detach()
