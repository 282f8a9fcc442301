"""Checks for the exercises at the end of each notebook.

Each ``check_...(answer)`` takes the function you wrote, runs it on fresh random inputs, and
compares it with the correct result. It prints, in plain words, whether you are right; when you
are not, it recognizes the classic mistakes by name and gives a hint, never the solution.
It returns ``True`` when your answer is right, so ``assert check_slerp(my_slerp)`` works too.
"""

import math

import torch
import torch.nn.functional as F

from .losses import bernoulli_log_likelihood, kl_to_standard_normal
from .models import ConditionalVAE


def _inputs(seed, *shapes, positive=()):
    """Reproducible random tensors (a private generator: the notebook's own RNG is untouched)."""
    g = torch.Generator().manual_seed(seed)
    tensors = []
    for i, shape in enumerate(shapes):
        t = torch.randn(shape, generator=g)
        tensors.append(0.3 + torch.rand(shape, generator=g) * 1.5 if i in positive else t)
    return tensors


def _same(a, b):
    return torch.is_tensor(a) and a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)


def _sentence(text):
    return text if text.endswith(("?", ".")) else text + "."


def _check(answer, what, cases, expected, mistakes, shape_hint, dtype=None):
    """Run ``answer`` on each argument tuple of ``cases``; compare with ``expected``; name ``mistakes``.

    Args:
        mistakes: list of ``(wrong_function, what_went_wrong, hint)``.
    """
    try:
        results = [answer(*args) for args in cases]
    except NotImplementedError:
        print(f"Not done yet: write your {what} where it says YOUR CODE HERE, then run this cell again.")
        return False
    except Exception as e:  # show the student's own error plainly, not a traceback
        print(f"Your {what} raised {type(e).__name__}: {e}")
        return False
    for args, result in zip(cases, results):
        want = expected(*args)
        if not torch.is_tensor(result):
            print(f"Your {what} returned a {type(result).__name__}; expected a tensor {shape_hint}.")
            return False
        if dtype is not None and result.dtype != dtype:
            print(f"Not quite: your {what} has dtype {result.dtype}; expected {dtype}.")
            return False
        if _same(result, want):
            continue
        for wrong, mistake, hint in mistakes:
            if _same(result, wrong(*args)):
                print(f"Not quite: {mistake}. Hint: {_sentence(hint)}")
                return False
        if result.shape != want.shape:
            print(f"Your {what} returned shape {tuple(result.shape)}; expected {tuple(want.shape)} {shape_hint}.")
        else:
            print(f"Not quite: your {what} has the right shape but different values. "
                  "Check each term against the formula in the notebook.")
        return False
    print(f"Correct! Your {what} matches vaelib on {len(cases)} sets of fresh inputs.")
    return True


def _gives_nan(answer, case, explanation, non_finite=False):
    """True (after printing ``explanation``) if ``answer(*case)`` returns a tensor holding nan (or, with
    ``non_finite``, inf too); an answer that raises is left to :func:`_check`, which reports it."""
    try:
        result = answer(*case)
    except Exception:
        return False
    bad = (~torch.isfinite(result)) if non_finite and torch.is_tensor(result) else None
    if torch.is_tensor(result) and (torch.isnan(result).any() or (bad is not None and bad.any())):
        print(f"Not quite: {explanation}")
        return True
    return False


# 00 · welcome -------------------------------------------------------------------------------

def check_to_unit_range(answer):
    """``answer(images)``: uint8 images ``(N, 28, 28)`` in 0..255 -> float32 in [0, 1]."""
    cases = [(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(n)),)
             for n in (3, 8)]
    mistakes = [
        (lambda x: x.float() / 256, "you divided by 256, so white is 0.996, not 1",
         "the largest uint8 value is 255"),
        (lambda x: x.float(), "the values still run up to 255", "divide by the largest possible value"),
        (lambda x: x // 255, "integer division turned almost every pixel into 0",
         "convert to float before dividing"),
    ]
    return _check(answer, "conversion", cases, lambda x: x.float() / 255, mistakes, "of floats, same shape")


# 01 · autoencoder ---------------------------------------------------------------------------

def check_off_data_threshold(answer):
    """``answer(held_out, reference, quantile)``: images ``(n, D)`` and ``(m, D)``, a fraction ->
    0-d tensor, the threshold of a judge that only looks at pixels (notebook 01's exercise): the
    ``quantile`` of the held-out images' distances to their nearest reference image."""
    def case(seed, n, m, q):
        g = torch.Generator().manual_seed(seed)
        return torch.rand(n, 784, generator=g), torch.rand(m, 784, generator=g), q

    cases = [case(31, 40, 60, 0.95), case(32, 25, 90, 0.8)]
    d = lambda h, r: torch.cdist(h, r)  # noqa: E731
    correct = lambda h, r, q: torch.quantile(d(h, r).min(dim=1).values, q)  # noqa: E731
    mistakes = [
        (lambda h, r, q: torch.quantile(d(h, r).flatten(), q),
         "you took the quantile of all distances, not of each image's nearest one",
         "first find, for each held-out image, its nearest reference image (min over the reference)"),
        (lambda h, r, q: torch.quantile(d(h, r).min(dim=0).values, q),
         "you found the nearest held-out image of each reference image: the wrong direction",
         "one distance per held-out image: take the min over the reference images"),
        (lambda h, r, q: torch.quantile(d(h, r).mean(dim=1), q),
         "you averaged each image's distances to all reference images",
         "the judge uses the nearest reference image only"),
        (lambda h, r, q: torch.quantile(d(h, r).min(dim=1).values ** 2, q), "your distances are squared",
         "Euclidean distance: the square root of the summed squared pixel differences"),
        (lambda h, r, q: torch.quantile(d(h, r).min(dim=1).values, 1 - q),
         "you took the 1 - quantile: most held-out digits would count as off the data",
         "95 % of held-out digits must lie closer than the threshold"),
        (lambda h, r, q: d(h, r).min(dim=1).values.max(), "you took the largest nearest distance, not the quantile",
         "torch.quantile(distances, quantile)"),
        (lambda h, r, q: d(h, r).min(dim=1).values.mean(), "you took the mean nearest distance, not the quantile",
         "torch.quantile(distances, quantile)"),
    ]
    return _check(answer, "threshold", cases, correct, mistakes, "(a 0-d tensor)")


# 02 · Gaussian encoder ----------------------------------------------------------------------

def check_posterior_on_grid(answer):
    """``answer(log_likelihood, z)``: ``log p(x | z_j)`` ``(batch, n)`` of each image at n grid codes
    ``z`` ``(n, latent_dim)`` (a regular grid, equal cells) -> ``(batch, n)`` the posterior
    ``p(z_j | x)`` on the grid: proportional to ``p(x | z_j) p(z_j)`` with ``p(z) = N(0, I)``,
    summing to 1 over the grid for each image."""
    def case(seed, batch, side, centre):
        g = torch.Generator().manual_seed(seed)
        axis = torch.linspace(-3, 3, side)
        z = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
        return centre + 8 * torch.randn(batch, len(z), generator=g), z

    # small log-likelihoods first, then digit-sized ones (e^-150 underflows float32)
    cases = [case(33, 3, 5, 0.0), case(34, 4, 9, -150.0)]
    log_prior = lambda z: -0.5 * (z**2).sum(-1)  # noqa: E731  (log 2 pi cancels in the normalization)
    correct = lambda ll, z: torch.softmax(ll + log_prior(z), dim=1)  # noqa: E731
    mistakes = [
        (lambda ll, z: torch.softmax(ll, dim=1), "you left out the prior: that is the normalized likelihood",
         "posterior = likelihood x prior / evidence, and the grid codes were not drawn from the prior"),
        (lambda ll, z: torch.softmax(ll - (z**2).sum(-1), dim=1), "your prior is N(0, I/2), not N(0, I)",
         "log N(z; 0, I) = -|z|^2 / 2 + a constant"),
        (lambda ll, z: torch.softmax(ll + log_prior(z), dim=0), "you normalized over the batch, not over the grid",
         "each image's posterior sums to 1 over the n codes: dim=1"),
        (lambda ll, z: torch.log_softmax(ll + log_prior(z), dim=1), "those are log-probabilities",
         "return the probabilities themselves"),
        (lambda ll, z: torch.exp(ll + log_prior(z)), "your posterior is not normalized",
         "divide by the evidence: the sum over the grid of likelihood x prior"),
    ]
    if _gives_nan(answer, cases[1], "your posterior contains nan: exp of log-likelihoods near -150 underflows to "
                  "0 in float32, and 0 / 0 is nan. Hint: subtract each image's largest log-weight before exp "
                  "(torch.softmax does it)."):
        return False
    return _check(answer, "posterior", cases, correct, mistakes, "(batch, n): one distribution per image")


# 03 · reparameterization --------------------------------------------------------------------

def check_correlated_sample(answer):
    """``answer(mu, L, eps)``: mean ``(d,)``, lower-triangular ``L`` ``(d, d)`` with ``L L^T`` the
    covariance, noise ``eps`` ``(n, d)`` -> ``(n, d)`` reparameterized samples of N(mu, L L^T),
    ``z = mu + L eps`` for each row, with gradients reaching mu and L."""
    def case(seed, n, d):
        g = torch.Generator().manual_seed(seed)
        L = torch.randn(d, d, generator=g).tril()
        L.diagonal().copy_(0.5 + torch.rand(d, generator=g))
        return torch.randn(d, generator=g), L, torch.randn(n, d, generator=g)

    cases = [case(35, 4, 2), case(36, 6, 3)]
    correct = lambda m, L, e: m + e @ L.T  # noqa: E731
    mistakes = [
        (lambda m, L, e: m + e @ L, "you multiplied by L from the wrong side: your samples have covariance L^T L, "
         "not L L^T", "for one column vector z = mu + L eps; a batch of rows is eps @ L.T"),
        (lambda m, L, e: m + e @ (L @ L.T).T, "you scaled the noise by the covariance L L^T itself",
         "L plays the part of sigma, the covariance that of sigma^2"),
        (lambda m, L, e: m + e * L.diagonal(), "you used only the diagonal of L: the coordinates come out uncorrelated",
         "the off-diagonal entries of L are what correlate them"),
        (lambda m, L, e: m + e, "z ignores L", "the noise must be shaped by L"),
        (lambda m, L, e: e @ L.T, "z is not centred on mu", "shift the shaped noise by mu"),
    ]
    mu, L, eps = cases[0]
    mu, L = mu.clone().requires_grad_(True), L.clone().requires_grad_(True)
    try:
        z = answer(mu, L, eps)
    except Exception:
        z = None  # _check below reports it
    if torch.is_tensor(z) and z.shape == eps.shape and not z.requires_grad:
        print("Not quite: no gradient reaches mu and L (did you detach, use .data, or draw z with "
              "MultivariateNormal(...).sample()?). Hint: build z from mu, L and eps with + and @.")
        return False
    return _check(answer, "sample", cases, correct, mistakes, "(n, d): one sample per row of eps")


# 04 · ELBO ----------------------------------------------------------------------------------

def check_negative_elbo(answer):
    """``answer(x, logits, mu, logvar)``: binary images ``x`` ``(batch, D)``, the decoder's ``logits``
    ``(batch, D)`` for one sample ``z`` of each, and an encoder that returns the mean ``mu`` and the
    log-variance ``logvar = log sigma^2`` ``(batch, d)`` -> 0-d tensor: the negative ELBO, summed over pixels
    and latent dimensions, averaged over the batch, in nats per image (what a training step minimizes)."""
    def case(seed, batch, pixels, latent, saturated=False):
        g = torch.Generator().manual_seed(seed)
        x = (torch.rand(batch, pixels, generator=g) < 0.3).float()
        logits = 3 * torch.randn(batch, pixels, generator=g)
        if saturated:  # a confident decoder: logits of +30 to +40 where the pixel is 0 (sigmoid rounds to 1)
            logits = torch.where(x == 0, 30 + 10 * torch.rand(batch, pixels, generator=g), logits)
        return x, logits, torch.randn(batch, latent, generator=g), torch.randn(batch, latent, generator=g)

    def elbo(x, logits, mu, logvar, recon=None, kl=None, reduce=torch.mean):
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1) if recon is None else recon
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1) if kl is None else kl
        return reduce(recon + kl)

    def with_kl(kl_of):
        return lambda x, l, m, lv: elbo(x, l, m, lv, kl=kl_of(m, lv).sum(-1))

    cases = [case(31, 5, 12, 3), case(32, 8, 30, 4, saturated=True)]
    bce_on_probabilities = lambda x, l: F.binary_cross_entropy(torch.sigmoid(l), x, reduction="none").sum(-1)  # noqa: E731
    mistakes = [
        (lambda x, l, m, lv: elbo(x, l, m, lv, recon=F.binary_cross_entropy_with_logits(l, x, reduction="none")
                                  .mean(-1)), "you averaged the reconstruction term over the pixels",
         "log p(x | z) of independent pixels is the sum of their log-probabilities; an average weighs the KL "
         "784 times more than the ELBO does"),
        (lambda x, l, m, lv: F.binary_cross_entropy_with_logits(l, x) + 0.5 * (m**2 + lv.exp() - 1 - lv).sum(-1).mean(),
         "you averaged the reconstruction term over the pixels",
         "the default reduction of the cross-entropy is a mean over every entry: sum over the pixels instead"),
        (lambda x, l, m, lv: elbo(x, l, m, lv, kl=torch.zeros(len(x))), "the KL term is missing: that is an "
         "autoencoder's loss", "the negative ELBO is the reconstruction term plus KL(q(z | x) || N(0, I))"),
        (lambda x, l, m, lv: elbo(x, l, m, lv, recon=bce_on_probabilities(x, l)), "you took the cross-entropy of "
         "sigmoid(logits): where the decoder is confident, sigmoid rounds to exactly 1, and the loss of that pixel "
         "is clipped at 100 nats whatever the logit", "work with the logits themselves"),
        (with_kl(lambda m, lv: 0.5 * (m**2 + lv.exp() - 1 - 0.5 * lv)), "your KL has log sigma where log sigma^2 "
         "belongs (a factor 2 is missing on the log term)", "logvar is already log sigma^2"),
        (with_kl(lambda m, lv: 0.5 * (m**2 + lv.exp() - 1 + lv)), "the log term of your KL has the wrong sign",
         "the KL to N(0, 1) is 0 at mu = 0, sigma = 1, and grows as sigma shrinks"),
        (with_kl(lambda m, lv: 0.5 * (m**2 + lv**2 - 1 - torch.log(lv**2))), "you used the log-variance as if it "
         "were sigma", "the encoder gives log sigma^2: sigma^2 = exp(logvar)"),
        (with_kl(lambda m, lv: 0.5 * (m**2 + (0.5 * lv).exp().exp() - 1 - (0.5 * lv).exp())), "you put sigma into a "
         "formula written for the log-variance", "in 0.5 (mu^2 + exp(logvar) - 1 - logvar), logvar is "
         "log sigma^2, not sigma"),
        (with_kl(lambda m, lv: 0.5 * (m**2 + (2 * lv).exp() - 1 - 2 * lv)), "you used the log-variance as if it "
         "were log sigma", "logvar = log sigma^2, so sigma^2 = exp(logvar)"),
        (with_kl(lambda m, lv: (m**2 + lv.exp() - 1 - lv)), "your KL is twice the right value",
         "did you forget the 1/2?"),
        (lambda x, l, m, lv: -elbo(x, l, m, lv), "your loss has the wrong sign: that is the ELBO",
         "a training step minimizes the negative ELBO, a number of nats"),
        (lambda x, l, m, lv: elbo(x, l, m, lv, reduce=torch.sum), "you summed over the batch",
         "average over the batch: nats per image, whatever the batch size"),
        (lambda x, l, m, lv: elbo(x, l, m, lv, reduce=lambda t: t), "you returned one loss per image",
         "a training step needs one number: the mean over the batch"),
    ]
    if _gives_nan(answer, cases[1], "your loss is inf or nan on a confident decoder. Hint: where a logit is "
                  "large, sigmoid rounds to 1 and log(1 - 1) is -inf: work with the logits themselves.",
                  non_finite=True):
        return False
    return _check(answer, "negative ELBO", cases, elbo, mistakes, "(): one number, nats per image")


# 05 · training ------------------------------------------------------------------------------

def check_iwae_estimate(answer):
    """``answer(log_w)``: log importance weights ``(k, n)``, ``log w_i = log p(x, z_i) - log q(z_i | x)``
    for k samples ``z_i ~ q(z | x)`` of each of n images -> ``(n,)`` the estimate
    ``log (1/k) sum_i w_i`` of log p(x), in nats."""
    def case(seed, k, n, centre, spread):
        g = torch.Generator().manual_seed(seed)
        return (centre + spread * torch.randn(k, n, generator=g),)
    # small log-weights first (every formula is finite), then digit-sized ones (e^-120 underflows float32),
    # then those of a poor model on a hard image (e^-800 underflows float64 too: its smallest is about e^-745)
    cases = [case(21, 7, 3, 0.0, 2.0), case(22, 50, 4, -120.0, 5.0), case(20, 30, 2, -800.0, 5.0)]
    correct = lambda lw: torch.logsumexp(lw, dim=0) - math.log(len(lw))  # noqa: E731
    mistakes = [
        (lambda lw: lw.mean(0), "you averaged the log-weights: that is the ELBO estimated with k samples, "
         "not the importance-weighted estimate", "the average goes inside the log: log of (1/k) sum_i w_i"),
        (lambda lw: torch.logsumexp(lw, dim=0), "you forgot the 1/k: your estimate is too high by log k",
         "log((1/k) sum_i w_i) = log(sum_i w_i) - log k"),
        (lambda lw: torch.logsumexp(lw, dim=0) / len(lw), "you divided the log of the sum by k",
         "dividing inside the log is subtracting log k outside it"),
        (lambda lw: torch.log(torch.exp(lw.double()).mean(0)).float(), "exp underflowed even in float64: its "
         "smallest number is about e^-745, and these log-weights are near -800, so their mean is 0 and its log "
         "is -inf", "more bits only move the cliff: stay in log space"),
        (lambda lw: torch.log(torch.exp(lw).mean(0)), "exp underflowed: weights of about e^-120 are below the "
         "smallest float32 (about e^-103), so their mean is 0 and its log is -inf", "stay in log space"),
        (lambda lw: lw.max(0).values, "you kept only the largest weight",
         "that is close only when one weight dominates: sum all k of them"),
    ]
    return _check(answer, "IWAE estimate", cases, correct, mistakes, "(n,): one estimate per image")


# 06 · latent explorer -----------------------------------------------------------------------

def check_slerp(answer):
    """``answer(z_a, z_b, t)``: codes ``(d,)`` and fractions ``t`` ``(steps,)`` in [0, 1] -> ``(steps, d)``
    points of the spherical interpolation (White, 2016): with ``omega`` the angle between z_a and z_b,
    ``z(t) = sin((1 - t) omega) / sin(omega) * z_a + sin(t omega) / sin(omega) * z_b``."""
    def case(seed, d, steps):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(d, generator=g), 1.5 * torch.randn(d, generator=g), torch.linspace(0, 1, steps)

    def slerp(a, b, t, ends=None):
        omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1, 1))
        t = t.unsqueeze(1)
        ea, eb = ends if ends is not None else (a, b)
        return (torch.sin((1 - t) * omega) * ea + torch.sin(t * omega) * eb) / torch.sin(omega)

    cases = [case(23, 2, 5), case(24, 20, 9)]
    t_col = lambda t: t.unsqueeze(1)  # noqa: E731
    mistakes = [
        (lambda a, b, t: (1 - t_col(t)) * a + t_col(t) * b, "that is the straight line between the codes",
         "weight z_a and z_b by sines of fractions of the angle omega between them"),
        (lambda a, b, t: slerp(b, a, t), "your path runs backwards, from z_b to z_a", "at t = 0 you should be at z_a"),
        (lambda a, b, t: slerp(a, b, t) * torch.sin(torch.arccos(torch.clamp(
            torch.dot(a / a.norm(), b / b.norm()), -1, 1))), "you forgot to divide by sin(omega): the path does "
         "not start at z_a", "at t = 0 the weight of z_a must be exactly 1"),
        (lambda a, b, t: slerp(a, b, t, (a / a.norm(), b / b.norm())), "your path runs on the unit sphere: "
         "you interpolated the directions and dropped the lengths", "use unit vectors only to find the angle"),
    ]
    if _gives_nan(answer, cases[1], "your path contains nan. Hint: arccos needs a cosine in [-1, 1]: divide the "
                  "dot product by both lengths (and clamp it)."):
        return False
    return _check(answer, "spherical interpolation", cases, slerp, mistakes, "(steps, latent_dim)")



# 07 · beta and posterior collapse -------------------------------------------------------------

def check_collapsed_units(answer):
    """``answer(mu, sigma)``: the posterior parameters ``(n, d)`` of n held-out images -> ``(d,)`` bool,
    True for each collapsed unit: a unit whose posterior is the prior N(0, 1), its KL averaged over the
    images under 0.01 nats."""
    def unit(g, n, kind):
        """mu, sigma (n,) of one unit of a given kind."""
        noise = torch.randn(n, generator=g)
        noise = (noise - noise.mean()) / noise.std()           # exactly mean 0, spread 1: units land where meant
        wobble = 1 + 0.02 * torch.randn(n, generator=g)
        return {"busy": (1.5 * noise, 0.2 * wobble),           # moves with the image, narrow: in use
                "collapsed": (0.05 * noise, wobble),           # the prior for every image: about 0.002 nats
                "fading": (0.12 * noise, torch.ones(n)),        # nearly the prior: 0.007 nats
                "parked": (1.2 + 0.01 * noise, 0.5 * wobble),   # never moves, but far from the prior: 1 nat
                "swinging": (0.8 * noise, wobble),              # sigma of the prior, but mu swings: 0.3 nats
                "drifting": (0.3 + 0.01 * noise, wobble)}[kind]  # sigma of the prior, mu a little off: 0.05 nats

    def case(seed, n, kinds):
        g = torch.Generator().manual_seed(seed)
        mus, sigmas = zip(*(unit(g, n, kind) for kind in kinds))
        return torch.stack(mus, dim=1), torch.stack(sigmas, dim=1)

    cases = [case(41, 200, ["busy", "collapsed", "parked", "swinging", "drifting", "fading"]),
             case(42, 300, ["collapsed", "busy", "swinging", "parked", "drifting", "fading", "collapsed"])]
    per_image = lambda m, s: 0.5 * (m**2 + s**2 - 1 - torch.log(s**2))  # noqa: E731  (n, d)
    correct = lambda m, s: per_image(m, s).mean(0) < 0.01               # noqa: E731
    mistakes = [
        (lambda m, s: m.var(0) < 0.01, "you tested only whether mu moves with the image: a unit whose mu stays "
         "put away from 0, with a narrow sigma, carries nothing about the image yet is far from the prior",
         "collapse means the posterior is N(0, 1) itself; what measures the distance between two Gaussians?"),
        (lambda m, s: (s.mean(0) - 1).abs() < 0.05, "you looked at sigma only: a unit with sigma = 1 whose mu "
         "swings from image to image is not the prior", "mu and sigma both have to match N(0, 1)"),
        (lambda m, s: per_image(m.mean(0, keepdim=True), s.mean(0, keepdim=True))[0] < 0.01, "you averaged mu "
         "and sigma over the images before comparing with the prior: a mu that swings both ways averages to 0",
         "compare each image's posterior with the prior, then average over the images"),
        (lambda m, s: (2 * per_image(m, s)).mean(0) < 0.01, "your KL is twice the right value, so a unit at "
         "0.007 nats was not counted", "did you forget the 1/2?"),
        (lambda m, s: per_image(m, s).sum(0) < 0.01, "you summed each unit's KL over the images, so no unit "
         "ever falls under 0.01", "the threshold is in nats per image: average over the images"),
        (lambda m, s: per_image(m, s).mean(0) >= 0.01, "your mask is True for the units in use",
         "True should mark the collapsed units"),
    ]
    return _check(answer, "collapsed-unit mask", cases, correct, mistakes, "(latent_dim,): True where collapsed",
                  dtype=torch.bool)


# 08 · convolutional VAE ---------------------------------------------------------------------

def check_conv2d(answer):
    """``answer(image, kernel, stride, padding)``: image ``(H, W)``, kernel ``(k_h, k_w)``, two ints ->
    ``(H_out, W_out)``, what ``nn.Conv2d(1, 1, kernel.shape, stride, padding)`` computes (without bias):
    ``H_out = floor((H + 2 * padding - k_h) / stride) + 1``, and likewise ``W_out``."""
    def case(seed, image, kernel, stride, padding):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(image, generator=g), torch.randn(kernel, generator=g), stride, padding
    cases = [case(18, (6, 6), (3, 3), 1, 1), case(19, (8, 8), (4, 4), 2, 1), case(20, (9, 7), (3, 2), 2, 0)]
    conv = lambda image, kernel, stride, padding: F.conv2d(  # noqa: E731
        image[None, None], kernel[None, None], stride=stride, padding=padding)[0, 0]
    mistakes = [
        (lambda i, k, s, p: conv(i, k.flip(0, 1), s, p), "you flipped the kernel: that is the convolution of "
         "signal processing, but nn.Conv2d does not flip (it computes a cross-correlation)",
         "multiply each window by the kernel as it is, entry by entry: kernel[0, 0] with the window's top-left pixel"),
        (lambda i, k, s, p: conv(i, k, s, 0), "you forgot the padding",
         "surround the image with `padding` rows and columns of zeros before sliding the kernel (F.pad)"),
        (lambda i, k, s, p: conv(F.pad(i, (p, p)), k, s, 0), "you padded only the left and right sides, not the top "
         "and bottom", "F.pad's tuple starts from the last dimension: (left, right, top, bottom)"),
        (lambda i, k, s, p: conv(i, k, 1, p), "you moved the window one pixel at a time: the stride is ignored",
         "the window's top-left corner moves by `stride` pixels, down and across"),
        (lambda i, k, s, p: conv(i, k, s, p) / k.numel(), "you averaged each window instead of summing it",
         "each output is the sum of the window times the kernel"),
        (lambda i, k, s, p: conv(i, k, s, p)[:-1, :-1], "your output is one row and one column short: the last "
         "window is missing", "along each side there are floor((size + 2 * padding - kernel) / stride) + 1 windows"),
    ]
    return _check(answer, "convolution", cases, conv, mistakes, "(H_out, W_out)")


# 09 · conditional VAE -----------------------------------------------------------------------

def check_negative_elbo_per_label(answer):
    """``answer(model, x, eps, num_classes)``: a conditional VAE, images ``(N, D)`` and noise ``eps``
    ``(N, latent_dim)`` -> ``(N, num_classes)``: column ``y`` holds the negative ELBO of each image under the
    label ``y``, in nats, with ``z = mu + sigma * eps`` (the same ``eps`` for every label)."""
    def case(seed, n, num_classes, latent_dim):
        with torch.random.fork_rng():          # the model's initial weights, without touching the caller's RNG
            torch.manual_seed(seed)
            model = ConditionalVAE(num_classes=num_classes, input_dim=64, hidden=(16,), latent_dim=latent_dim)
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(n, 64, generator=g).round()
        return model.eval(), x, torch.randn(n, latent_dim, generator=g), num_classes

    def table(model, x, eps, k, z_of=lambda m, s, e: m + s * e, kl_weight=1.0, recon_scale=1.0, label=None):
        columns = []
        for y in range(k):
            labels = torch.full((len(x),), y if label is None else label)
            mu, sigma = model.encode(x, labels)
            logits = model.decode(z_of(mu, sigma, eps), labels)
            columns.append(-recon_scale * bernoulli_log_likelihood(x, logits) + kl_weight * kl_to_standard_normal(mu, sigma))
        return torch.stack(columns, dim=1)

    with torch.no_grad():
        cases = [case(25, 6, 10, 2), case(26, 9, 4, 3)]
        try:
            first, again = answer(*cases[0]), answer(*cases[0])
        except Exception:
            first = again = None  # _check below reports it
        if torch.is_tensor(first) and torch.is_tensor(again) and first.shape == again.shape \
                and not torch.allclose(first, again):
            print("Not quite: your table changes from one call to the next. Hint: use the eps you are given for "
                  "every label (no fresh torch.randn), so that the labels are compared on the same noise.")
            return False
        mistakes = [
            (lambda m, x, e, k: table(m, x, e, k, kl_weight=0.0), "you left out the KL term",
             "the negative ELBO is the reconstruction term plus KL(q(z | x, y) || N(0, I))"),
            (lambda m, x, e, k: -table(m, x, e, k), "your table has the wrong sign: that is the ELBO",
             "the negative ELBO is a loss in nats, lowest for the label that explains the image best"),
            (lambda m, x, e, k: table(m, x, e, k, z_of=lambda mu, s, ep: mu), "you decoded mu: eps is ignored",
             "z = mu + sigma * eps, with the eps given"),
            (lambda m, x, e, k: table(m, x, e, k, z_of=lambda mu, s, ep: mu + s**2 * ep),
             "you scaled eps by the variance", "sigma is already a standard deviation: z = mu + sigma * eps"),
            (lambda m, x, e, k: table(m, x, e, k, label=0), "every column uses the same label",
             "column y must encode and decode with the label y"),
            (lambda m, x, e, k: table(m, x, e, k, recon_scale=1 / x.shape[1]), "you averaged the reconstruction "
             "term over the pixels", "sum it over the pixels, as the ELBO does"),
            (lambda m, x, e, k: table(m, x, e, k).T, "your table has one row per label",
             "return one row per image and one column per label: shape (N, num_classes)"),
        ]
        return _check(answer, "table of negative ELBOs", cases, lambda m, x, e, k: table(m, x, e, k), mistakes,
                      "(N, num_classes): one row per image, one column per label")


# 10 · richer posteriors ---------------------------------------------------------------------

def _coupling_conditioner(seed, d_a, d_b):
    """A fixed small network ``z_a`` ``(batch, d_a)`` -> ``(s, t)``, each ``(batch, d_b)``: a coupling step's conditioner."""
    g = torch.Generator().manual_seed(seed)
    w1, b1 = torch.randn(d_a, 16, generator=g), torch.randn(16, generator=g)
    w2 = 0.5 * torch.randn(16, 2 * d_b, generator=g)

    def conditioner(z_a):
        s, t = (torch.tanh(z_a @ w1 + b1) @ w2).chunk(2, dim=-1)
        return s, t
    return conditioner


def check_coupling_log_det(answer):
    """``answer(z, conditioner, inverse)``: codes ``z`` ``(batch, D)`` and a conditioner ``z_a -> (s, t)``
    -> ``(batch,)`` log |det| of the Jacobian of one affine coupling step at ``z``: the first ``D // 2``
    coordinates ``z_a`` pass unchanged, the others ``z_b`` become ``z_b * exp(s) + t`` (``inverse=False``)
    or ``(z_b - t) * exp(-s)`` (``inverse=True``), with ``s, t = conditioner(z_a)``, each ``(batch, D - D // 2)``."""
    def case(seed, batch, d, inverse):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, d, generator=g), _coupling_conditioner(seed, d // 2, d - d // 2), inverse

    cases = [case(41, 5, 6, False), case(42, 4, 7, True), case(43, 3, 4, False), case(44, 6, 5, True)]

    def log_scales(z, conditioner):
        return conditioner(z[:, :z.shape[1] // 2])[0]

    def correct(z, conditioner, inverse):
        s = log_scales(z, conditioner)
        return -s.sum(-1) if inverse else s.sum(-1)

    mistakes = [
        (lambda z, c, inv: (-1 if inv else 1) * log_scales(z, c),
         "you returned one log-scale per moved coordinate, not one number per code",
         "the Jacobian is triangular: its determinant is the product of its diagonal, so its log is a sum over "
         "the coordinates"),
        (lambda z, c, inv: (-1 if inv else 1) * log_scales(z, c).exp().sum(-1),
         "you summed the scales exp(s) themselves",
         "the log of a product of exp(s_j) is a sum of s_j"),
        (lambda z, c, inv: log_scales(z, c).sum(-1),
         "your inverse step has the forward step's log-determinant",
         "the inverse divides by exp(s): its Jacobian is the inverse matrix, whose log-determinant has the "
         "opposite sign"),
        (lambda z, c, inv: correct(z, c, inv).sum(),
         "you summed over the batch too: that is one number for all codes",
         "each code has its own Jacobian; sum over the last dimension only"),
        (lambda z, c, inv: (-1 if inv else 1) * torch.cat([log_scales(z, c), z[:, :z.shape[1] // 2]], -1).sum(-1),
         "you counted the coordinates that pass unchanged",
         "those sit on the Jacobian's diagonal with a 1, whose log is 0"),
    ]
    return _check(answer, "log-determinant", cases, correct, mistakes, "(batch,): one number per code")


# 11 · tighter bounds and priors --------------------------------------------------------------

def check_iwae_gradient_weights(answer):
    """``answer(log_w)``: log-weights ``(k, n)`` of k samples for each of n images -> ``(k, n)``, the weight
    each sample's gradient ``grad log w_i`` gets in the gradient of the k-sample bound
    ``L_k = log (1/k) sum_i w_i``: ``grad L_k = sum_i weight_i grad log w_i``."""
    def case(seed, k, n, centre, spread):
        g = torch.Generator().manual_seed(seed)
        return (centre + spread * torch.randn(k, n, generator=g),)
    # small log-weights (every formula is finite), then digit-sized ones (e^-150 underflows float32)
    cases = [case(41, 5, 3, 0.0, 1.5), case(42, 50, 4, -150.0, 3.0), case(43, 7, 2, 0.0, 0.5)]
    correct = lambda lw: torch.softmax(lw, dim=0)  # noqa: E731
    mistakes = [
        (lambda lw: torch.full_like(lw, 1 / len(lw)), "every sample gets 1/k: that is the gradient of the average "
         "of the log-weights, the k-sample ELBO, not of the importance-weighted bound",
         "differentiate log((1/k) sum_i w_i): the chain rule puts each w_i over the sum of all of them"),
        (lambda lw: lw.exp(), "these are the weights w_i themselves, not normalized",
         "the derivative of log(sum_j w_j) with respect to log w_i divides w_i by the sum"),
        (lambda lw: lw.exp() / len(lw), "these are w_i / k, not normalized: the 1/k of the bound only shifts its "
         "value by log k and cancels in the gradient", "divide each w_i by the sum over the k samples"),
        (lambda lw: torch.softmax(lw, dim=0) / len(lw), "you divided the normalized weights by k again: the 1/k "
         "inside the log adds -log k to the bound's value and nothing to its gradient",
         "each image's weights sum to 1"),
        (lambda lw: torch.softmax(lw, dim=1), "you normalized over the images, not over the k samples of each image",
         "each column (one image) sums to 1"),
        (lambda lw: torch.softmax(-lw, dim=0), "the largest weight should go to the sample with the largest "
         "log-weight", "check the sign"),
    ]
    nan_case = cases[1]
    if _gives_nan(answer, nan_case, "your weights hold nan for log-weights near -150 nats: exp underflowed to 0 "
                  "in float32 and 0 / 0 is nan. Hint: subtract each image's largest log-weight first, "
                  "or use torch.softmax."):
        return False
    return _check(answer, "gradient weights", cases, correct, mistakes, "(k, n): one weight per sample and image")


# 12 · hierarchies and discrete codes --------------------------------------------------------

def check_codebook_perplexity(answer):
    """``answer(codes, num_codes)``: the code indices ``(N, P)`` of N images at P positions, each in
    0..num_codes-1 -> a 0-dim tensor, the perplexity of the codebook over the whole set: exp of the
    entropy (in nats) of how often each code is used, counted over every position of every image."""
    def case(seed, n, positions, k, used):
        g = torch.Generator().manual_seed(seed)
        weights = torch.rand(used, generator=g) ** 3 + 0.01             # a skewed use of the first `used` codes
        codes = torch.multinomial(weights, n * positions, replacement=True, generator=g).view(n, positions)
        return codes, k

    def entropy(p):
        p = p[p > 0]
        return -(p * p.log()).sum()

    def shares(codes, k):
        return torch.bincount(codes.flatten(), minlength=k).double() / codes.numel()

    correct = lambda c, k: entropy(shares(c, k)).exp()  # noqa: E731
    cases = [case(31, 20, 9, 16, 12), case(32, 50, 49, 32, 20), case(33, 8, 4, 8, 8)]
    mistakes = [
        (lambda c, k: entropy(shares(c, k)), "you returned the entropy, not the perplexity",
         "the perplexity is exp of the entropy: the number of equally used codes with that entropy"),
        (lambda c, k: 2 ** entropy(shares(c, k)), "you raised 2 to an entropy in nats",
         "take exp of an entropy in nats (or 2 to an entropy in bits): the base of the log and of the power must agree"),
        (lambda c, k: torch.exp(entropy(shares(c, k)) / math.log(2)), "you took exp of an entropy in bits",
         "the base of the log and of the power must agree"),
        (lambda c, k: torch.stack([entropy(shares(row, k)).exp() for row in c]).mean(),
         "you averaged one perplexity per image: each image uses only a few codes, so that is lower than the "
         "set's", "count the codes over the whole set first, then take one entropy"),
        (lambda c, k: torch.stack([entropy(shares(col, k)).exp() for col in c.T]).mean(),
         "you averaged one perplexity per position", "count the codes over every position of every image together"),
        (lambda c, k: entropy(torch.bincount(c.flatten(), minlength=k).double()).exp(),
         "you used the counts, not the shares: they must be divided by the number of codes counted so they sum to 1",
         "divide the counts by codes.numel()"),
    ]

    def same_scalar(answer_):
        def wrapped(c, k):
            result = answer_(c, k)
            return result.double().reshape(()) if torch.is_tensor(result) and result.numel() == 1 else result
        return wrapped

    if _gives_nan(answer, cases[0], "your perplexity is nan: a code that is never used has share 0, and "
                  "0 * log 0 is nan in floating point. Hint: a share of 0 adds nothing to the entropy; leave those "
                  "codes out of the sum."):
        return False
    return _check(same_scalar(answer), "codebook perplexity", cases, lambda c, k: correct(c, k).reshape(()),
                  [(lambda c, k, w=w: w(c, k).double().reshape(()), m, h) for w, m, h in mistakes],
                  "(a 0-dim tensor: one number for the whole set)")


# 13 · disentanglement ------------------------------------------------------------------------

def check_mutual_information_gap(answer):
    """``answer(mi, factor_entropy)``: mutual informations ``(d, K)`` in nats between d latent units and K
    factors, and each factor's entropy ``(K,)`` -> 0-d tensor, the mutual information gap (Chen et al. 2018):
    for each factor, the largest mutual information with one unit minus the second largest, divided by the
    factor's entropy; averaged over the factors."""
    def case(seed, d, k):
        g = torch.Generator().manual_seed(seed)
        h = 1.0 + 2.5 * torch.rand(k, generator=g, dtype=torch.float64)      # entropies of the factors
        mi = h * torch.rand(d, k, generator=g, dtype=torch.float64) ** 2     # each at most its factor's entropy
        return mi, h

    cases = [case(131, 6, 3), case(132, 8, 4), case(133, 5, 5)]
    top_two = lambda mi: mi.topk(2, dim=0).values  # noqa: E731  (2, K)
    correct = lambda mi, h: ((top_two(mi)[0] - top_two(mi)[1]) / h).mean()  # noqa: E731

    def over_units(mi, h):   # the gap between each unit's two best factors, averaged over the units
        top = mi.topk(2, dim=1)
        return ((top.values[:, 0] - top.values[:, 1]) / h[top.indices[:, 0]]).mean()

    mistakes = [
        (lambda mi, h: (top_two(mi)[0] - top_two(mi)[1]).mean(), "your gaps are in nats, not fractions of each "
         "factor's entropy, so a factor with many values counts for more and the score is not between 0 and 1",
         "divide each factor's gap by that factor's entropy before averaging"),
        (lambda mi, h: ((mi.max(0).values - mi.min(0).values) / h).mean(), "you took the best unit minus the "
         "worst; the worst is usually an unused unit, so a factor spread over two units still scores high",
         "the gap is to the runner-up: the second largest mutual information"),
        (lambda mi, h: (mi.max(0).values / h).mean(), "you kept only the best unit's share; a factor copied into "
         "two units would still score 1", "subtract the second best unit's mutual information"),
        (over_units, "you compared factors within each unit and averaged over the units; MIG asks, for each "
         "factor, whether one unit stands out", "sort each factor's column (over the units), not each unit's row"),
        (lambda mi, h: ((top_two(mi)[0] - top_two(mi)[1]) / h.sum()).mean(), "you divided by the entropy of all "
         "factors together", "each factor's gap is divided by its own entropy"),
    ]
    return _check(answer, "mutual information gap", cases, correct, mistakes, "(): one number")


CHECKS = {
    "00": [check_to_unit_range], "01": [check_off_data_threshold], "02": [check_posterior_on_grid],
    "03": [check_correlated_sample], "04": [check_negative_elbo],
    "05": [check_iwae_estimate], "06": [check_slerp],
    "07": [check_collapsed_units], "08": [check_conv2d], "09": [check_negative_elbo_per_label],
    "10": [check_coupling_log_det], "11": [check_iwae_gradient_weights], "12": [check_codebook_perplexity],
    "13": [check_mutual_information_gap],
}
