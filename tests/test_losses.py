"""vaelib.losses against torch.distributions, the reparameterization gradient against calculus,
and the IWAE estimate against the ELBO it generalizes."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

import vaelib
from vaelib import losses


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# --- closed forms against torch.distributions --------------------------------------------------

def test_kl_to_standard_normal_matches_torch_distributions(gen):
    mu = torch.randn(6, 3, generator=gen, dtype=torch.float64) * 2
    sigma = torch.rand(6, 3, generator=gen, dtype=torch.float64) * 3 + 0.05
    expected = kl_divergence(Independent(Normal(mu, sigma), 1), Independent(Normal(0.0, 1.0).expand(mu.shape), 1))
    got = losses.kl_to_standard_normal(mu, sigma)
    assert got.shape == (6,)
    torch.testing.assert_close(got, expected)


def test_kl_is_zero_only_at_the_prior():
    assert torch.equal(losses.kl_to_standard_normal(torch.zeros(2, 4), torch.ones(2, 4)), torch.zeros(2))
    kl = losses.kl_to_standard_normal(torch.tensor([[0.1, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 0.9]]))
    assert (kl > 0).all()
    torch.testing.assert_close(kl[0], torch.tensor(0.005))  # mu^2 / 2


@pytest.mark.parametrize("soft", [False, True])
def test_bernoulli_log_likelihood_matches_torch_distributions(gen, soft):
    logits = torch.randn(5, 784, generator=gen) * 4
    x = torch.rand(5, 784, generator=gen)
    x = x if soft else (x > 0.5).float()  # grey levels are soft targets
    expected = Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1)
    got = losses.bernoulli_log_likelihood(x, logits)
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected)


def test_bernoulli_log_likelihood_is_finite_for_extreme_logits():
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    logits = torch.tensor([[100.0, -100.0, -100.0, 100.0]])  # two right, two wrong, all extremely sure
    got = losses.bernoulli_log_likelihood(x, logits)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.tensor([-200.0]))  # log sigmoid(-100) = -100 for each miss
    # the naive form takes log(0) here
    p = torch.sigmoid(logits)
    assert not torch.isfinite((x * p.log() + (1 - x) * (1 - p).log()).sum(-1)).all()


@pytest.mark.parametrize("sigma", [1.0, 0.3, "per-pixel", "per-example-and-pixel"])
def test_gaussian_log_likelihood_matches_torch_distributions(gen, sigma):
    x = torch.rand(4, 10, generator=gen, dtype=torch.float64)
    mean = torch.randn(4, 10, generator=gen, dtype=torch.float64)
    if sigma == "per-pixel":
        sigma = torch.rand(10, generator=gen, dtype=torch.float64) + 0.1
    elif sigma == "per-example-and-pixel":
        sigma = torch.rand(4, 10, generator=gen, dtype=torch.float64) + 0.1
    expected = Normal(mean, torch.as_tensor(sigma, dtype=torch.float64)).log_prob(x).sum(-1)
    got = losses.gaussian_log_likelihood(x, mean, sigma)
    assert got.shape == (4,)
    torch.testing.assert_close(got, expected)


def test_gaussian_log_likelihood_unit_sigma_is_half_squared_error_plus_constant(gen):
    x, mean = torch.rand(3, 784, generator=gen), torch.rand(3, 784, generator=gen)
    expected = -0.5 * ((x - mean) ** 2).sum(-1) - 784 * 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(losses.gaussian_log_likelihood(x, mean), expected)


def test_gaussian_log_density_broadcasts(gen):
    z = torch.randn(7, 3, 2, generator=gen)
    mu, sigma = torch.randn(3, 2, generator=gen), torch.rand(3, 2, generator=gen) + 0.5
    got = losses.gaussian_log_density(z, mu, sigma)
    assert got.shape == (7, 3)
    torch.testing.assert_close(got, Normal(mu, sigma).log_prob(z).sum(-1))


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_negative_elbo_parts(gen, beta, likelihood):
    x = torch.rand(8, 784, generator=gen)
    output = torch.randn(8, 784, generator=gen)
    mu, sigma = torch.randn(8, 2, generator=gen), torch.rand(8, 2, generator=gen) + 0.1
    parts = losses.negative_elbo(x, output, mu, sigma, beta=beta, likelihood=likelihood)
    assert set(parts) == {"loss", "recon", "kl"} and all(v.shape == (8,) for v in parts.values())
    log_px = (losses.bernoulli_log_likelihood(x, output) if likelihood == "bernoulli"
              else losses.gaussian_log_likelihood(x, output))
    torch.testing.assert_close(parts["recon"], -log_px)
    torch.testing.assert_close(parts["kl"], losses.kl_to_standard_normal(mu, sigma))
    torch.testing.assert_close(parts["loss"], parts["recon"] + beta * parts["kl"])


def test_negative_elbo_bad_likelihood(gen):
    x = torch.rand(2, 4, generator=gen)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        losses.negative_elbo(x, x, torch.zeros(2, 1), torch.ones(2, 1), likelihood="poisson")


@pytest.mark.parametrize("call, message", [
    (lambda: losses.bernoulli_log_likelihood(torch.rand(4, 784), torch.rand(4, 783)), r"\(4, 784\) and \(4, 783\)"),
    (lambda: losses.bernoulli_log_likelihood(torch.rand(4, 784), torch.rand(784)), r"\(4, 784\) and \(784,\)"),
    (lambda: losses.gaussian_log_likelihood(torch.rand(4, 784), torch.rand(1, 784)), "x and mean"),
    (lambda: losses.kl_to_standard_normal(torch.rand(4, 2), torch.rand(4, 3)), "mu and sigma"),
    (lambda: losses.negative_elbo(torch.rand(4, 784), torch.rand(4, 784), torch.rand(4, 2), torch.rand(2)),
     "mu and sigma"),
])
def test_shape_mismatch_errors(call, message):
    with pytest.raises(ValueError, match=f"same shape.*{message}|{message}.*same shape"):
        call()


# --- the reparameterization trick ---------------------------------------------------------------

def test_reparameterized_gradient_matches_calculus():
    """d/dmu E[z^2] = 2 mu and d/dsigma E[z^2] = 2 sigma, for z = mu + sigma * eps."""
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(4,), latent_dim=3)
    mu = torch.tensor([0.7, -1.3, 0.0], requires_grad=True)
    sigma = torch.tensor([0.5, 2.0, 1.0], requires_grad=True)
    n = 200_000
    z = model.reparameterize(mu.expand(n, 3), sigma.expand(n, 3))
    assert z.shape == (n, 3)
    (z ** 2).mean(0).sum().backward()
    # Monte Carlo standard errors are about 2 * sqrt(mu^2 + 2 sigma^2) / sqrt(n) < 0.015
    torch.testing.assert_close(mu.grad, 2 * mu.detach(), rtol=0, atol=0.05)
    torch.testing.assert_close(sigma.grad, 2 * sigma.detach(), rtol=0, atol=0.05)
    # and the samples have the right moments
    torch.testing.assert_close(z.detach().mean(0), mu.detach(), rtol=0, atol=0.02)
    torch.testing.assert_close(z.detach().std(0), sigma.detach(), rtol=0.01, atol=0)


# --- IWAE ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    """A small VAE, briefly trained on 2,000 bundled images with a plain loop (not vaelib.fit)."""
    torch.manual_seed(0)
    x, _ = vaelib.load_mnist("train")
    x = x[:2000]
    model = vaelib.VAE(hidden=(64,), latent_dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(2):
        for batch in x[torch.randperm(len(x))].split(100):
            loss = model.loss(batch)["loss"].mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    x_test, _ = vaelib.load_mnist("test")
    return model.eval(), x_test[:200]


def test_iwae_matches_a_direct_computation(trained):
    """Same random draws, written out with torch.distributions; chunks of 3 samples cover k = 7."""
    model, x = trained
    x = x[:5]
    torch.manual_seed(1)
    got = losses.iwae_log_likelihood(model, x, k=7, max_rows=15)  # 15 // 5 rows = chunks of 3 samples
    torch.manual_seed(1)
    with torch.no_grad():
        mu, sigma = model.encode(x)
        z = torch.cat([mu + sigma * torch.randn(kc, 5, 2) for kc in (3, 3, 1)])       # (7, 5, 2)
        log_px_z = Bernoulli(logits=model.decode(z.reshape(35, 2)).view(7, 5, 784),
                             validate_args=False).log_prob(x).sum(-1)
        log_w = log_px_z + Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(mu, sigma).log_prob(z).sum(-1)
        expected = torch.logsumexp(log_w, 0) - math.log(7)
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected)


def test_iwae_with_k_1_is_the_elbo_on_average(trained):
    """E[log w] for one sample is the ELBO; compared per example, then averaged."""
    model, x = trained
    torch.manual_seed(2)
    repeats = 40
    with torch.no_grad():
        iwae = torch.stack([losses.iwae_log_likelihood(model, x, k=1) for _ in range(repeats)])   # (R, N)
        elbo = torch.stack([-model.loss(x)["loss"] for _ in range(repeats)])
    assert iwae.shape == elbo.shape == (repeats, len(x))
    per_example = iwae.mean(0) - elbo.mean(0)
    standard_error = per_example.std() / math.sqrt(len(x))
    assert abs(per_example.mean()) < 4 * standard_error + 1e-3, (per_example.mean(), standard_error)
    assert standard_error < 1.0  # the check above is tight enough to notice a wrong term


def test_iwae_with_more_samples_is_not_lower(trained):
    model, x = trained
    torch.manual_seed(3)
    k1 = losses.iwae_log_likelihood(model, x, k=1)
    k100 = losses.iwae_log_likelihood(model, x, k=100)
    assert k1.shape == k100.shape == (len(x),)
    assert torch.isfinite(k100).all()
    assert k100.mean() >= k1.mean()
    # and it is a bound from below on log p(x) <= 0 for binary-ish data: at least sane numbers
    assert (k100 < 0).all()


def test_iwae_accepts_images_and_gaussian_models(trained):
    model, x = trained
    torch.manual_seed(4)
    a = losses.iwae_log_likelihood(model, x[:3].view(3, 1, 28, 28), k=5)
    assert a.shape == (3,) and torch.isfinite(a).all()
    gaussian = vaelib.VAE(hidden=(8,), latent_dim=2, likelihood="gaussian")
    b = losses.iwae_log_likelihood(gaussian, x[:4], k=5, batch_size=3)  # two batches
    assert b.shape == (4,) and torch.isfinite(b).all()


@pytest.mark.parametrize("k", [0, -1])
def test_iwae_bad_k(trained, k):
    model, x = trained
    with pytest.raises(ValueError, match="k must be at least 1"):
        losses.iwae_log_likelihood(model, x[:2], k=k)


def test_iwae_k_1000_on_bundled_test_digits():
    # k = 1000 on a quarter of the 2,000 test digits, 784-400-20, chunked as on the whole set (the training
    # scripts score all 2,000 for README's table; that takes about 20 s on 2 cores).
    model = vaelib.load_pretrained("vae_20d")
    x = vaelib.load_mnist("test")[0][:500]
    torch.manual_seed(0)
    elbo = -vaelib.evaluate(model, x)["loss"]
    torch.manual_seed(0)
    estimate = losses.iwae_log_likelihood(model, x, k=1000)
    assert estimate.shape == (500,) and torch.isfinite(estimate).all()
    assert elbo < estimate.mean() < elbo + 20  # tighter than the ELBO, by a few nats


def test_iwae_needs_a_vae_and_takes_labels_for_a_conditional_one(trained):
    _, x = trained
    with pytest.raises(ValueError, match="the IWAE estimate needs a VAE, whose encoder gives mu and sigma; got a Autoencoder"):
        losses.iwae_log_likelihood(vaelib.Autoencoder([784, 8, 2]), x[:2], k=2)
    torch.manual_seed(0)
    cvae = vaelib.ConditionalVAE(hidden=(8,), latent_dim=2).eval()
    y = torch.arange(4)
    estimate = losses.iwae_log_likelihood(cvae, x[:4], k=5, batch_size=3, labels=y)
    assert estimate.shape == (4,) and torch.isfinite(estimate).all()
    torch.manual_seed(1)
    elbo = -torch.stack([cvae.loss(x[:4], labels=y)["loss"] for _ in range(200)]).mean(0)
    torch.manual_seed(1)
    k1 = torch.stack([losses.iwae_log_likelihood(cvae, x[:4], k=1, labels=y) for _ in range(200)]).mean(0)
    torch.testing.assert_close(k1, elbo, rtol=0, atol=2.0)  # k = 1: the ELBO on average, with these labels
    with pytest.raises(ValueError, match="ConditionalVAE is conditional: pass the labels"):
        losses.iwae_log_likelihood(cvae, x[:4], k=2)


# --- bad values (issue 10, section 6): said once, at the public functions ------------------------

@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan")])
@pytest.mark.parametrize("call", [
    lambda s: losses.kl_to_standard_normal(torch.zeros(3, 2), s),
    lambda s: losses.negative_elbo(torch.rand(3, 4), torch.zeros(3, 4), torch.zeros(3, 2), s),
    lambda s: losses.gaussian_log_likelihood(torch.rand(3, 2), torch.zeros(3, 2), s),
], ids=["kl", "negative_elbo", "gaussian"])
def test_sigma_must_be_positive(call, bad):
    sigma = torch.ones(3, 2)
    sigma[1, 0] = bad
    with pytest.raises(ValueError, match=r"sigma must be a positive standard deviation, got a smallest value of "
                                         r"(0|-0\.5|nan) \(from a log-variance s, sigma = exp\(s / 2\)\)"):
        call(sigma)


def test_gaussian_log_likelihood_refuses_a_number_sigma_that_is_not_positive():
    with pytest.raises(ValueError, match="sigma must be a positive standard deviation"):
        losses.gaussian_log_likelihood(torch.rand(3, 2), torch.zeros(3, 2), sigma=0.0)


@pytest.mark.parametrize("bad", ["nan", "inf"])
@pytest.mark.parametrize("call", [
    lambda x: losses.bernoulli_log_likelihood(x, torch.zeros_like(x)),
    lambda x: losses.gaussian_log_likelihood(x, torch.zeros_like(x)),
    lambda x: losses.reconstruction_log_likelihood(x, torch.zeros_like(x), "gaussian"),
    lambda x: losses.negative_elbo(x, torch.zeros_like(x), torch.zeros(2, 2), torch.ones(2, 2)),
], ids=["bernoulli", "gaussian", "reconstruction", "negative_elbo"])
def test_losses_refuse_images_with_nan_or_infinity(call, bad):
    x = torch.rand(2, 784)
    x[1, 7] = float(bad)
    with pytest.raises(ValueError, match=r"^x contain NaN or infinity; expected finite pixel values"):
        call(x)


def test_bernoulli_targets_must_lie_in_0_1():
    x = torch.rand(2, 784) * 255
    with pytest.raises(ValueError, match=r"x hold values from .* to .*; a Bernoulli likelihood expects pixel values "
                                         r"in \[0, 1\] \(images in 0\.\.255\? divide them by 255\)"):
        losses.bernoulli_log_likelihood(x, torch.zeros_like(x))
    with pytest.raises(ValueError, match="a Bernoulli likelihood expects"):
        losses.negative_elbo(x, torch.zeros_like(x), torch.zeros(2, 2), torch.ones(2, 2))
    assert torch.isfinite(losses.gaussian_log_likelihood(x, torch.zeros_like(x))).all()  # any finite x for a Gaussian
