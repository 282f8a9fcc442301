"""vaelib.iwae, vaelib.priors and vaelib.gaps2d: the k-sample bound, the IWAE model, EM for a Gaussian mixture,
and the 2-D gaps, checked against brute-force computations and torch.distributions."""

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal

import vaelib
from vaelib import gaps2d, iwae, priors


@pytest.fixture
def model():
    torch.manual_seed(0)
    return iwae.IWAE(hidden=(16,), latent_dim=2, k=4)


@pytest.fixture
def x():
    return torch.bernoulli(torch.full((5, 784), 0.3), generator=torch.Generator().manual_seed(1))


def test_bound_is_log_mean_exp_and_equals_elbo_for_k_1():
    log_w = torch.randn(7, 3, dtype=torch.float64) * 50 - 800
    brute = torch.tensor([math.log(sum(math.exp(v + 800) for v in col) / 7) - 800 for col in log_w.T.tolist()],
                         dtype=torch.float64)
    torch.testing.assert_close(iwae.iwae_bound(log_w), brute)
    torch.testing.assert_close(iwae.iwae_bound(log_w[:1]), log_w[0])
    with pytest.raises(ValueError, match="shape"):
        iwae.iwae_bound(torch.zeros(3))


def test_iwae_loss_is_minus_the_bound_of_its_log_weights(model, x):
    torch.manual_seed(3)
    parts = model.loss(x)
    torch.manual_seed(3)
    mu, sigma = model.encode(x)
    eps = torch.randn(4, *mu.shape)
    log_w = iwae.log_weights(model, x, 4, eps=eps)
    torch.testing.assert_close(parts["loss"], -iwae.iwae_bound(log_w))
    torch.testing.assert_close(parts["kl"], vaelib.kl_to_standard_normal(mu, sigma))
    with pytest.raises(ValueError, match="beta"):
        model.loss(x, beta=0.5)


def test_iwae_trains_with_fit_and_round_trips_a_checkpoint(model, x, tmp_path):
    history = vaelib.fit(model, x, epochs=2, batch_size=5, progress=False, device="cpu")
    assert len(history["train_loss"]) == 2
    loaded = vaelib.load_checkpoint(vaelib.save_checkpoint(model, tmp_path / "m.pt"))
    assert type(loaded).__name__ == "IWAE" and loaded.k == 4
    with pytest.raises(ValueError, match="k must be"):
        iwae.IWAE(k=0)


def test_log_weights_match_torch_distributions(model, x):
    eps = torch.randn(3, 5, 2)
    mu, sigma = model.encode(x)
    z = mu + sigma * eps
    logits = model.decode(z.reshape(-1, 2)).view(3, 5, -1)
    expected = (torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
                + Normal(0.0, 1.0).log_prob(z).sum(-1) - Normal(mu, sigma).log_prob(z).sum(-1))
    torch.testing.assert_close(iwae.log_weights(model, x, 3, eps=eps), expected)
    prior = Normal(1.0, 2.0)
    with_prior = iwae.log_weights(model, x, 3, log_prior=lambda z: prior.log_prob(z).sum(-1), eps=eps)
    torch.testing.assert_close(with_prior - expected, (prior.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1),
                               atol=1e-3, rtol=0)   # differences of numbers near -500 in float32
    with pytest.raises(ValueError, match="eps"):
        iwae.log_weights(model, x, 2, eps=eps)
    with pytest.raises(ValueError, match="VAE"):
        iwae.log_weights(vaelib.Autoencoder(), x, 2)


def test_importance_log_likelihood_is_vaelibs_draw_for_draw(model, x):
    torch.manual_seed(5)
    mine = iwae.importance_log_likelihood(model, x, k=30, batch_size=2, max_rows=20)
    torch.manual_seed(5)
    torch.testing.assert_close(mine, vaelib.iwae_log_likelihood(model, x, k=30, batch_size=2, max_rows=20))


def test_active_units_and_gradient_snr(model, x):
    activity, active = iwae.active_units(model, x)
    mu, _ = model.encode(x)
    torch.testing.assert_close(activity, mu.var(0).detach())
    assert active == int((activity > 0.01).sum())
    snr = iwae.gradient_snr(model, x, k=3, repeats=4)
    n_enc = sum(p.numel() for p in model.encoder.parameters())
    assert snr["encoder"].shape == (n_enc,) and (snr["decoder"] >= 0).all()
    with pytest.raises(ValueError, match="repeats"):
        iwae.gradient_snr(model, x, k=3, repeats=1)


def _mixture():
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    means = torch.tensor([[-4.0, 0.0], [3.0, 3.0], [3.0, -3.0]], dtype=torch.float64)
    covs = torch.tensor([[[1.0, 0.5], [0.5, 1.0]], [[0.5, 0.0], [0.0, 0.3]], [[0.4, -0.2], [-0.2, 0.6]]],
                        dtype=torch.float64)
    return weights, means, covs


def test_mixture_log_density_against_brute_force_and_torch():
    weights, means, covs = _mixture()
    gmm = priors.GaussianMixture(weights, means, covs)
    z = torch.randn(50, 2, dtype=torch.float64) * 3
    brute = []
    for point in z:
        total = 0.0
        for w, m, c in zip(weights, means, covs):
            d = point - m
            total += w * math.exp(-0.5 * d @ torch.linalg.inv(c) @ d) / (2 * math.pi * math.sqrt(torch.det(c)))
        brute.append(math.log(total))
    torch.testing.assert_close(gmm.log_prob(z), torch.tensor(brute, dtype=torch.float64))
    torch_gmm = MixtureSameFamily(Categorical(weights), MultivariateNormal(means, covs))
    torch.testing.assert_close(gmm.log_prob(z.float().view(5, 10, 2)), torch_gmm.log_prob(z).float().view(5, 10))
    with pytest.raises(ValueError, match="sum to 1"):
        priors.GaussianMixture(weights * 2, means, covs)
    with pytest.raises(ValueError, match="expected weights"):
        priors.GaussianMixture(weights, means[:2], covs)


def test_em_recovers_a_mixture_and_never_lowers_the_likelihood():
    weights, means, covs = _mixture()
    truth = priors.GaussianMixture(weights, means, covs)
    z = truth.sample(6000, generator=torch.Generator().manual_seed(0))
    fitted = priors.fit_gaussian_mixture(z, components=3, iterations=60, seed=0)
    assert all(b >= a - 1e-9 for a, b in zip(fitted.history, fitted.history[1:]))
    assert abs(fitted.history[-1] - truth.log_prob(z.double()).mean().item()) < 0.02
    order = [int(((fitted.means - m).norm(dim=1)).argmin()) for m in means]
    torch.testing.assert_close(fitted.weights[order], weights, atol=0.03, rtol=0)
    torch.testing.assert_close(fitted.means[order], means, atol=0.1, rtol=0)
    assert fitted.sample(7).shape == (7, 2)


@pytest.mark.parametrize("bad, match", [(torch.zeros(5), "shape"), (torch.full((5, 2), float("nan")), "NaN")])
def test_em_refuses_bad_codes(bad, match):
    with pytest.raises(ValueError, match=match):
        priors.fit_gaussian_mixture(bad)


def test_em_refuses_more_components_than_codes():
    with pytest.raises(ValueError, match="components"):
        priors.fit_gaussian_mixture(torch.randn(3, 2), components=4)


def test_grid_log_likelihood_matches_a_large_importance_sample(model, x):
    model = model.eval()
    grid = gaps2d.grid_log_likelihood(model, x[:2], n=101, width=8)
    torch.manual_seed(0)
    sampled = vaelib.iwae_log_likelihood(model, x[:2], k=20000)
    torch.testing.assert_close(grid, sampled, atol=0.05, rtol=0)


def test_gaps_add_up_and_optimisation_raises_the_elbo(model, x):
    out = gaps2d.gaps(model.eval(), x[:3], steps=60, samples=400)
    torch.testing.assert_close(out["elbo"] + out["amortization"] + out["approximation"], out["log_px"])
    assert (out["amortization"] > -0.05).all() and (out["approximation"] > -0.05).all()
    with pytest.raises(ValueError, match="2-D"):
        gaps2d.grid_log_likelihood(vaelib.VAE(hidden=(8,), latent_dim=3), x[:1])
