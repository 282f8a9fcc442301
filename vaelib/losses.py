"""The VAE's loss, term by term, in nats per example.

Every function returns one number per example, shape ``(batch,)``, summed over pixels and
latent dimensions (never averaged over them: see notebook 04). Average over the batch yourself
(``.mean()``) when you need a scalar to optimize.

The public functions check what they are given, once and cheaply (shapes, images without NaN or
infinity, Bernoulli targets in [0, 1], a positive ``sigma``), and say what they expected. The
models call the unchecked ``_`` versions below on inputs they have already checked on the way in,
so a training step checks its batch once.
"""

import math

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "gaussian")


def _check_same_shape(a, b, a_name, b_name):
    if a.shape != b.shape:
        raise ValueError(f"{a_name} and {b_name} must have the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


def check_images(x, likelihood="gaussian", name="images"):
    """Raise a ValueError unless ``x`` is finite and, for a Bernoulli likelihood, in [0, 1].

    One ``torch.aminmax`` pass: a NaN makes both ends NaN, an infinity makes one end infinite.
    """
    if x.numel() == 0:
        return
    low, high = (v.item() for v in torch.aminmax(x.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} contain NaN or infinity; expected finite pixel values "
                         f"(look for a division by zero or a log of 0 where the images were made)")
    if likelihood == "bernoulli" and (low < 0 or high > 1):
        hint = " (images in 0..255? divide them by 255)" if high > 1 else ""
        raise ValueError(f"{name} hold values from {low:g} to {high:g}; a Bernoulli likelihood expects "
                         f"pixel values in [0, 1]{hint}")


def _check_sigma(sigma):
    """Raise a ValueError unless every ``sigma`` is > 0 (a standard deviation)."""
    if sigma.numel() and not sigma.detach().min() > 0:
        raise ValueError(f"sigma must be a positive standard deviation, got a smallest value of "
                         f"{sigma.detach().min().item():g} (from a log-variance s, sigma = exp(s / 2))")


def _check_likelihood(likelihood):
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def bernoulli_log_likelihood(x, logits):
    """log p(x | z) for pixels x in [0, 1] under independent Bernoullis with these logits.

    Computed as minus the binary cross-entropy on logits, which never takes ``log(0)``.

    Args:
        x: ``(batch, D)`` targets in [0, 1] (grey levels are used as soft targets).
        logits: ``(batch, D)`` decoder outputs before the sigmoid.
    Returns:
        ``(batch,)`` log-likelihood in nats, summed over the D pixels.
    """
    _check_same_shape(x, logits, "x", "logits")
    check_images(x, "bernoulli", "x")
    return _bernoulli_log_likelihood(x, logits)


def _bernoulli_log_likelihood(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_log_likelihood(x, mean, sigma=1.0):
    """log p(x | z) under independent Gaussians N(mean, sigma^2) (sigma = 1: MSE / 2 plus a constant).

    Args:
        x, mean: ``(batch, D)``.
        sigma: a positive number or a tensor broadcastable to ``(batch, D)``.
    Returns:
        ``(batch,)`` log-likelihood in nats, summed over the D pixels.
    """
    _check_same_shape(x, mean, "x", "mean")
    check_images(x, "gaussian", "x")
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    _check_sigma(sigma)
    return gaussian_log_density(x, mean, sigma)


def gaussian_log_density(z, mu, sigma):
    """log N(z; mu, diag(sigma^2)), summed over the last dimension. Shapes broadcast; returns ``z.shape[:-1]``."""
    return (-0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)


def reconstruction_log_likelihood(x, output, likelihood="bernoulli"):
    """Dispatch to :func:`bernoulli_log_likelihood` (output = logits) or
    :func:`gaussian_log_likelihood` (output = mean, sigma = 1). Returns ``(batch,)`` nats."""
    _check_likelihood(likelihood)
    _check_same_shape(x, output, "x", "output")
    check_images(x, likelihood, "x")
    return _reconstruction_log_likelihood(x, output, likelihood)


def _reconstruction_log_likelihood(x, output, likelihood):
    if likelihood == "bernoulli":
        return _bernoulli_log_likelihood(x, output)
    return gaussian_log_density(x, output, torch.ones((), dtype=x.dtype, device=x.device))


def kl_to_standard_normal(mu, sigma):
    """KL( N(mu, diag(sigma^2)) || N(0, I) ) in closed form.

    KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)

    Args:
        mu: ``(batch, latent_dim)`` posterior means.
        sigma: ``(batch, latent_dim)`` posterior standard deviations (not variances), > 0.
    Returns:
        ``(batch,)`` KL divergence in nats, summed over latent dimensions.
    """
    _check_same_shape(mu, sigma, "mu", "sigma")
    _check_sigma(sigma)
    return _kl_to_standard_normal(mu, sigma)


def _kl_to_standard_normal(mu, sigma):
    return 0.5 * (mu**2 + sigma**2 - 1.0 - 2.0 * torch.log(sigma)).sum(-1)


def negative_elbo(x, output, mu, sigma, beta=1.0, likelihood="bernoulli"):
    """The (beta-weighted) negative evidence lower bound, per example.

    loss = -log p(x | z) + beta * KL(q(z | x) || p(z)),  with z one sample from q(z | x).

    Args:
        x: ``(batch, D)`` data.
        output: ``(batch, D)`` decoder output for the sampled z (logits, or means if Gaussian).
        mu, sigma: ``(batch, latent_dim)`` parameters of q(z | x).
        beta: weight of the KL term (1 gives the true ELBO).
    Returns:
        dict of ``(batch,)`` tensors in nats: ``"loss"``, ``"recon"`` (= -log p(x | z)) and ``"kl"``.
    """
    _check_likelihood(likelihood)
    _check_same_shape(x, output, "x", "output")
    _check_same_shape(mu, sigma, "mu", "sigma")
    check_images(x, likelihood, "x")
    _check_sigma(sigma)
    return _negative_elbo(x, output, mu, sigma, beta, likelihood)


def _negative_elbo(x, output, mu, sigma, beta, likelihood):
    recon = -_reconstruction_log_likelihood(x, output, likelihood)
    kl = _kl_to_standard_normal(mu, sigma)
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


@torch.no_grad()
def iwae_log_likelihood(model, x, k=1000, batch_size=100, max_rows=20_000, labels=None):
    """Importance-weighted estimate of log p(x) (Burda et al., 2015), per example.

    log p(x) ~= log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x).

    With k = 1 its expectation is the ELBO; it rises towards log p(x) as k grows. Samples are
    drawn in chunks of at most ``max_rows`` decoded images, so k = 1000 fits in memory.

    Args:
        model: a vaelib VAE (``model.variational``: its ``encode`` gives ``mu`` and ``sigma``).
        x: ``(N, 784)`` or ``(N, 1, 28, 28)`` images in [0, 1].
        k: importance samples per example.
        labels: ``(N,)`` labels, for a conditional model only.
    Returns:
        ``(N,)`` estimates of log p(x) in nats (higher is better).
    """
    if not model.variational:
        raise ValueError(f"the IWAE estimate needs a VAE, whose encoder gives mu and sigma; "
                         f"got a {type(model).__name__}")
    if not getattr(model, "standard_prior", True):
        raise ValueError(f"this estimate assumes the prior N(0, I), but a {type(model).__name__} has a prior of "
                         f"its own; use its own estimate (for a HierarchicalVAE: vaelib.hierarchical_iwae)")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    model.eval()
    device = next(model.parameters()).device
    results = []
    for start in range(0, len(x), batch_size):
        xb = model.flatten(x[start:start + batch_size].to(device))
        yb = None if labels is None else labels[start:start + batch_size].to(device)
        mu, sigma = model.encode(xb, yb)
        b = len(xb)
        chunk = max(1, max_rows // b)
        log_w = []
        for done in range(0, k, chunk):
            kc = min(chunk, k - done)
            z = mu + sigma * torch.randn(kc, *mu.shape, device=device)       # (kc, b, latent)
            output = model.decode(z.reshape(kc * b, -1), None if yb is None else yb.repeat(kc))  # (kc * b, D)
            log_px_z = _reconstruction_log_likelihood(xb.repeat(kc, 1), output, model.likelihood).view(kc, b)
            log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.ones_like(z))
            log_qz = gaussian_log_density(z, mu, sigma)
            log_w.append(log_px_z + log_pz - log_qz)                           # (kc, b)
        results.append(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
    return torch.cat(results)
