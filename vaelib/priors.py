"""A prior that fills the holes: a Gaussian mixture fitted by EM to the codes of a trained model.

After training, the codes of the data (the aggregate posterior's samples of a VAE, or an autoencoder's
codes) are not distributed as N(0, I). Ghosh et al. (2020) fit a density to them *ex post* and sample
new codes from it; a Gaussian mixture with full covariances, fitted by expectation-maximization
(Dempster, Laird & Rubin 1977), is their cheapest choice. :func:`fit_gaussian_mixture` does that;
:class:`GaussianMixture` gives its log density (a prior for :func:`vaelib.iwae.importance_log_likelihood`)
and samples. Everything is computed in float64.
"""

import math

import torch


def _check_codes(z, name="z"):
    if not torch.is_tensor(z) or not z.is_floating_point() or z.dim() != 2 or len(z) == 0:
        raise ValueError(f"expected {name} as a float tensor of shape (n, d) with n >= 1, "
                         f"got {tuple(z.shape) if torch.is_tensor(z) else type(z).__name__}")
    if not torch.isfinite(z).all():
        raise ValueError(f"{name} contain NaN or infinity")


def gaussian_log_densities(z, means, covariances):
    """log N(z; means_c, covariances_c) for every point and component: ``(n, d)`` -> ``(n, K)``.

    Through the Cholesky factor L (C = L L^T): ``-|L^-1 (z - m)|^2 / 2 - sum log diag L - d/2 log 2 pi``.
    """
    chol = torch.linalg.cholesky(covariances)                                    # (K, d, d)
    eye = torch.eye(z.shape[-1], dtype=chol.dtype).expand_as(chol)
    chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)             # (K, d, d): L^-1
    diff = z[None, :, :].to(chol.dtype) - means[:, None, :]                      # (K, n, d)
    solved = diff @ chol_inv.transpose(1, 2)                                     # (K, n, d): L^-1 (z - m)
    half_log_det = torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)          # (K,)
    d = z.shape[-1]
    return (-0.5 * (solved**2).sum(-1) - half_log_det[:, None] - 0.5 * d * math.log(2 * math.pi)).T


class GaussianMixture:
    """``p(z) = sum_c weights_c N(z; means_c, covariances_c)``.

    ``weights``: ``(K,)`` summing to 1; ``means``: ``(K, d)``; ``covariances``: ``(K, d, d)`` positive definite.
    ``history``: the mean log-likelihood of the fitted codes after each EM iteration (empty if built by hand).
    """

    def __init__(self, weights, means, covariances, history=()):
        weights, means, covariances = (torch.as_tensor(t, dtype=torch.float64) for t in (weights, means, covariances))
        K = len(weights)
        if weights.dim() != 1 or means.shape[:1] != (K,) or means.dim() != 2 \
                or tuple(covariances.shape) != (K, means.shape[1], means.shape[1]):
            raise ValueError(f"expected weights (K,), means (K, d), covariances (K, d, d); got {tuple(weights.shape)}, "
                             f"{tuple(means.shape)}, {tuple(covariances.shape)}")
        if (weights < 0).any() or abs(weights.sum().item() - 1) > 1e-6:
            raise ValueError(f"weights must be >= 0 and sum to 1, got a sum of {weights.sum().item():g}")
        self.weights, self.means, self.covariances = weights, means, covariances
        self.history = list(history)

    def __len__(self):
        return len(self.weights)

    def log_prob(self, z):
        """log p(z) at codes ``(..., d)`` -> ``(...)``, in the dtype of ``z``."""
        flat = z.reshape(-1, z.shape[-1]).double()
        log_p = torch.logsumexp(self.weights.log() + gaussian_log_densities(flat, self.means, self.covariances), -1)
        return log_p.view(z.shape[:-1]).to(z.dtype)

    def sample(self, n, generator=None):
        """``(n, d)`` float32 codes: a component by its weight, then a draw of its Gaussian."""
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)   # (n,)
        eps = torch.randn(n, self.means.shape[1], 1, generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.covariances)
        return (self.means[component] + (chol[component] @ eps).squeeze(-1)).float()


def fit_gaussian_mixture(z, components=10, iterations=100, seed=0, ridge=1e-6):
    """Fit a Gaussian mixture to codes ``z`` ``(n, d)`` by EM; return a :class:`GaussianMixture`.

    Start: ``components`` distinct codes drawn at random (``seed``) as means, the codes' covariance for
    each component, equal weights. Then ``iterations`` times:

    * E-step: responsibilities ``r[i, c] = weights_c N(z_i; c) / sum_c' weights_c' N(z_i; c')`` (in log space);
    * M-step: with ``n_c = sum_i r[i, c]``: ``weights_c = n_c / n``, ``means_c = sum_i r[i, c] z_i / n_c``,
      ``covariances_c = sum_i r[i, c] (z_i - means_c)(z_i - means_c)^T / n_c + ridge I``.

    Each iteration cannot lower the mean log-likelihood (``ridge`` aside), recorded in ``.history``.
    """
    _check_codes(z)
    if isinstance(components, bool) or not isinstance(components, int) or not 1 <= components <= len(z):
        raise ValueError(f"components must be a whole number from 1 to the number of codes ({len(z)}), "
                         f"got {components!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a whole number >= 1, got {iterations!r}")
    x = z.double()
    n, d = x.shape
    eye = ridge * torch.eye(d, dtype=torch.float64)
    start = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:components]
    means = x[start].clone()
    covariances = (torch.cov(x.T).reshape(d, d) + eye).expand(components, d, d).clone()
    weights = torch.full((components,), 1.0 / components, dtype=torch.float64)
    history = []
    for _ in range(iterations):
        log_joint = weights.log() + gaussian_log_densities(x, means, covariances)   # (n, K)
        log_norm = torch.logsumexp(log_joint, 1, keepdim=True)                      # (n, 1) log p(z_i)
        r = (log_joint - log_norm).exp()                                             # (n, K) responsibilities
        n_c = r.sum(0).clamp_min(1e-12)                                              # (K,)
        weights = n_c / n
        means = (r.T @ x) / n_c[:, None]
        diff = x[None] - means[:, None]                                              # (K, n, d)
        covariances = (r.T[:, :, None] * diff).transpose(1, 2) @ diff / n_c[:, None, None] + eye
        history.append(log_norm.mean().item())                                       # before this M-step
    history.append(torch.logsumexp(weights.log() + gaussian_log_densities(x, means, covariances), 1).mean().item())
    return GaussianMixture(weights, means, covariances, history[1:])
