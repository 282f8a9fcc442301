"""vaelib.posteriors: each family's density checked against torch.distributions or the change of variables,
the models against the Model protocol, and the 2-D grid against brute force."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

import vaelib
from vaelib import posteriors as P

FAMILIES = [P.DiagonalGaussian(3), P.FullCovarianceGaussian(3), P.CouplingFlow(3, steps=3, hidden=5),
            P.CouplingFlow(2, steps=4, hidden=8)]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f"{type(f).__name__}{f.size}")
def test_sample_and_log_prob_agree(family):
    g = torch.Generator().manual_seed(0)
    params = 0.5 * torch.randn(4, family.size, generator=g, dtype=torch.float64)
    z, log_q = family.sample(params, torch.randn(7, 4, family.latent_dim, generator=g, dtype=torch.float64))
    assert z.shape == (7, 4, family.latent_dim) and log_q.shape == (7, 4)
    torch.testing.assert_close(family.log_prob(params, z), log_q)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f"{type(f).__name__}{f.size}")
def test_log_prob_is_a_density_by_the_change_of_variables(family):
    """log q(z) = log N(eps) - log |det dz/d eps|, the Jacobian by autograd, one code at a time."""
    g = torch.Generator().manual_seed(1)
    params = 0.5 * torch.randn(1, family.size, generator=g, dtype=torch.float64)
    eps = torch.randn(family.latent_dim, generator=g, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda e: family.sample(params, e.view(1, -1))[0][0], eps)
    expected = Normal(0.0, 1.0).log_prob(eps).sum() - torch.linalg.slogdet(jacobian)[1]
    torch.testing.assert_close(family.sample(params, eps.view(1, -1))[1][0], expected)


def test_full_covariance_matches_torch():
    family = P.FullCovarianceGaussian(3)
    params = torch.randn(5, family.size, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu, L = family.split(params)
    assert torch.equal(L, L.tril()) and (L.diagonal(dim1=-2, dim2=-1) > 0).all()
    q = MultivariateNormal(mu, scale_tril=L)
    z = q.sample((6,))
    torch.testing.assert_close(P.full_covariance_log_density(z, mu, L), q.log_prob(z))
    prior = MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(P.kl_full_covariance_to_standard_normal(mu, L), kl_divergence(q, prior))


def test_coupling_step_inverts_and_its_log_det_is_the_sum_of_s():
    g = torch.Generator().manual_seed(3)
    d, hidden = 5, 4
    step = torch.randn(2, P.coupling_size(d, hidden), generator=g, dtype=torch.float64)
    z = torch.randn(2, d, generator=g, dtype=torch.float64)
    for flip in (False, True):
        out, log_det = P.coupling_step(z, step, hidden, flip=flip)
        back, log_det_back = P.coupling_step(out, step, hidden, flip=flip, inverse=True)
        torch.testing.assert_close(back, z)
        torch.testing.assert_close(log_det_back, -log_det)
        kept = slice(d - d // 2, d) if flip else slice(0, d // 2)
        assert torch.equal(out[:, kept], z[:, kept])
        for i in range(2):
            jacobian = torch.autograd.functional.jacobian(
                lambda v: P.coupling_step(v.view(1, -1), step[i:i + 1], hidden, flip=flip)[0][0], z[i])
            torch.testing.assert_close(log_det[i], torch.linalg.slogdet(jacobian)[1])


def test_inverse_softplus():
    sigma = torch.tensor([0.01, 0.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(torch.nn.functional.softplus(P.inverse_softplus(sigma)), sigma)


@pytest.mark.parametrize("cls", [P.FullCovVAE, P.FlowVAE])
def test_models_follow_the_model_protocol_and_round_trip_a_checkpoint(cls, tmp_path):
    vaelib.seed_everything(0)
    model = cls(hidden=[16], latent_dim=2)
    x = torch.bernoulli(torch.rand(6, 784, generator=torch.Generator().manual_seed(4)))
    parts = model.loss(x)
    assert set(parts) == {"loss", "recon", "kl"} and all(v.shape == (6,) for v in parts.values())
    torch.testing.assert_close(parts["loss"], parts["recon"] + parts["kl"])
    mu, sigma = model.encode(x)
    assert mu.shape == sigma.shape == (6, 2) and (sigma > 0).all()
    assert model.code(x).shape == (6, 2) and model.reconstruct(x).shape == (6, 784)
    history = vaelib.fit(model, x, x, epochs=1, batch_size=3, progress=False, threads=1)
    assert len(history["test_loss"]) == 1
    loaded = vaelib.load_checkpoint(vaelib.save_checkpoint(model, tmp_path / "m.pt"))
    assert type(loaded) is cls and loaded.config == model.config
    torch.testing.assert_close(P.posterior_params(loaded, x), P.posterior_params(model, x))


def test_full_covariance_model_kl_is_closed_form_and_encode_gives_marginal_std():
    model = P.FullCovVAE(hidden=[16], latent_dim=2)
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(5))
    mu, L = model.posterior(x)
    torch.testing.assert_close(model.encode(x)[1], (L @ L.transpose(-1, -2)).diagonal(dim1=-2, dim2=-1).sqrt())
    torch.testing.assert_close(model.loss(x)["kl"], P.kl_full_covariance_to_standard_normal(mu, L))


def test_the_flow_starts_as_the_identity():
    model = P.FlowVAE(hidden=[16], latent_dim=2)
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(model.code(x), model.encode(x)[0])


def test_grid_log_px_matches_a_fine_square_grid_and_the_iwae_estimate():
    vaelib.seed_everything(0)
    model = vaelib.VAE(hidden=[32], latent_dim=2).eval()
    x = torch.bernoulli(torch.rand(3, 784, generator=torch.Generator().manual_seed(7)) * 0.3)
    grid = P.posterior_grid(model, x, n=40)
    axis = torch.linspace(-6, 6, 301)
    z = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 1, 2).expand(-1, 3, -1)
    with torch.no_grad():
        brute = torch.logsumexp(P.log_joint(model, x, z), 0) + 2 * math.log(axis[1] - axis[0])
    torch.testing.assert_close(grid["log_px"], brute, atol=0.02, rtol=0)
    torch.manual_seed(0)
    iwae = torch.logsumexp(P.log_weights(model, x, k=2000), 0) - math.log(2000)
    assert (iwae <= grid["log_px"] + 0.05).all() and (iwae >= grid["log_px"] - 0.5).all()


def test_fitting_from_the_moments_raises_the_elbo_to_near_log_px():
    vaelib.seed_everything(0)
    model = vaelib.VAE(hidden=[32], latent_dim=2).eval().requires_grad_(False)
    x = torch.bernoulli(torch.rand(4, 784, generator=torch.Generator().manual_seed(8)) * 0.3)
    grid = P.posterior_grid(model, x)
    mean, cov = P.posterior_moments(grid)
    assert mean.shape == (4, 2) and cov.shape == (4, 2, 2)
    for family in (P.DiagonalGaussian(2), P.FullCovarianceGaussian(2), P.CouplingFlow(2)):
        start = P.moment_start(family, grid)
        fitted = P.fit_posterior(family, start, grid, steps=100)
        torch.manual_seed(2)
        elbo = P.log_weights(model, x, k=2000, params=fitted, family=family).mean(0)
        torch.manual_seed(2)
        before = P.log_weights(model, x, k=2000, params=start, family=family).mean(0)
        assert (elbo > before - 0.05).all() and (elbo <= grid["log_px"] + 0.05).all()
        assert (grid["log_px"] - elbo).mean() < 1.0


def test_interpolated_log_joint_is_exact_on_the_lattice_and_falls_beyond_it():
    vaelib.seed_everything(0)
    model = vaelib.VAE(hidden=[32], latent_dim=2).eval()
    x = torch.bernoulli(torch.rand(3, 784, generator=torch.Generator().manual_seed(9)) * 0.3)
    grid = P.posterior_grid(model, x, n=16)
    torch.testing.assert_close(P.interpolate_log_joint(grid, grid["z"]), grid["log_joint"], atol=1e-3, rtol=0)
    far = grid["center"] + 3 * (grid["z"][0] - grid["center"])          # three times as far as a corner
    assert (P.interpolate_log_joint(grid, far) < grid["log_joint"][0] - 10).all()


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"params of shape \(batch, 6\)"):
        P.DiagonalGaussian(3).sample(torch.zeros(2, 5), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        P.CouplingFlow(1)
    with pytest.raises(ValueError, match=r"codes of shape \(\.\.\., 2, 3\)"):
        P.FullCovarianceGaussian(3).log_prob(torch.zeros(2, 9), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="2-D code"):
        P.posterior_grid(vaelib.VAE(hidden=[8], latent_dim=3), torch.zeros(1, 784))
    with pytest.raises(ValueError, match="needs a VAE"):
        P.family_of(vaelib.Autoencoder())
    with pytest.raises(ValueError, match="steps must be a whole number"):
        P.FlowVAE(steps=0)
