"""vaelib.hierarchical (the two-layer VAE, its KLs and IWAE) and vaelib.vq (quantizer, straight-through
gradient, codebook usage, priors over codes): maths against torch.distributions or brute force, and errors."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

import vaelib
from vaelib.hierarchical import HierarchicalVAE, hierarchical_iwae, kl_between_gaussians, relative_to_prior
from vaelib.vq import (VQVAE, MarkovPrior, PositionPrior, codebook_usage, quantize, straight_through,
                       uniform_prior_kl)


def small_hierarchy():
    torch.manual_seed(0)
    return HierarchicalVAE(hidden=[32], latent_dims=[4, 2], top_hidden=8)


def digits(n=6):
    return torch.bernoulli(torch.rand(n, 784, generator=torch.Generator().manual_seed(1)))


def test_kl_between_gaussians_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(2, 5, 3, generator=g)
    sigma_q, sigma_p = 0.2 + torch.rand(2, 5, 3, generator=g)
    expected = kl_divergence(Normal(mu_q, sigma_q), Normal(mu_p, sigma_p)).sum(-1)
    torch.testing.assert_close(kl_between_gaussians(mu_q, sigma_q, mu_p, sigma_p), expected)
    with pytest.raises(ValueError, match="one shape"):
        kl_between_gaussians(mu_q, sigma_q, mu_p[:, :2], sigma_p)
    with pytest.raises(ValueError, match="positive"):
        kl_between_gaussians(mu_q, -sigma_q, mu_p, sigma_p)


def test_q_of_z1_is_the_prior_shifted_and_scaled():
    mu_p, sigma_p = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])
    mu, sigma = relative_to_prior(torch.tensor([0.5, 0.0]), torch.tensor([1.0, 0.25]), mu_p, sigma_p)
    torch.testing.assert_close((mu, sigma), (torch.tensor([1.5, -2.0]), torch.tensor([0.5, 0.5])))


def test_hierarchy_loss_is_recon_plus_both_kls_by_hand():
    model = small_hierarchy()
    x = digits()
    eps2, eps1 = torch.randn(6, 2), torch.randn(6, 4)
    (delta_mu, delta_sigma), (mu2, sigma2) = model.encoder(x)
    z2 = mu2 + sigma2 * eps2
    mu_p, sigma_p = model.decoder.prior(z2)
    mu1, sigma1 = mu_p + delta_mu, sigma_p * delta_sigma
    z1 = mu1 + sigma1 * eps1
    recon = -vaelib.bernoulli_log_likelihood(x, model.decode(z1))
    kl2 = kl_divergence(Normal(mu2, sigma2), Normal(0.0, 1.0)).sum(-1)
    kl1 = kl_divergence(Normal(mu1, sigma1), Normal(mu_p, sigma_p)).sum(-1)
    torch.manual_seed(5)
    noise = torch.randn(6, 2), torch.randn(6, 4)
    torch.manual_seed(5)
    parts = model.loss(x)
    s = model.infer(x, *noise)     # the same draws as the loss took
    assert set(parts) == {"loss", "recon", "kl", "kl1", "kl2"} and parts["loss"].shape == (6,)
    torch.testing.assert_close(parts["kl"], parts["kl1"] + parts["kl2"])
    torch.testing.assert_close(parts["loss"], parts["recon"] + parts["kl"])
    torch.testing.assert_close(parts["kl2"], kl_divergence(Normal(s["mu2"], s["sigma2"]), Normal(0.0, 1.0)).sum(-1))
    by_hand = model.infer(x, eps2, eps1)
    torch.testing.assert_close(by_hand["z1"], z1)
    torch.testing.assert_close(kl_between_gaussians(by_hand["mu1"], by_hand["sigma1"], by_hand["mu_p"],
                                                    by_hand["sigma_p"]), kl1)
    assert torch.isfinite(recon).all() and (kl2 >= 0).all()


def test_hierarchy_log_weights_match_torch_distributions():
    model = small_hierarchy()
    x = digits(3)
    torch.manual_seed(2)
    log_w = model.log_weights(x, 5)
    torch.manual_seed(2)
    s = model.infer(x.repeat(5, 1))
    log_joint = (-torch.nn.functional.binary_cross_entropy_with_logits(model.decode(s["z1"]), x.repeat(5, 1),
                                                                       reduction="none").sum(-1)
                 + Normal(0.0, 1.0).log_prob(s["z2"]).sum(-1) + Normal(s["mu_p"], s["sigma_p"]).log_prob(s["z1"]).sum(-1))
    log_q = Normal(s["mu2"], s["sigma2"]).log_prob(s["z2"]).sum(-1) + Normal(s["mu1"], s["sigma1"]).log_prob(s["z1"]).sum(-1)
    torch.testing.assert_close(log_w, (log_joint - log_q).view(5, 3))


def test_hierarchical_iwae_is_the_mean_weight_in_log_space_and_k_1_averages_to_the_elbo():
    model = small_hierarchy()
    x = digits(4)
    torch.manual_seed(3)
    estimate = hierarchical_iwae(model, x, k=50, max_rows=60)        # chunks of 15 draws
    torch.manual_seed(3)
    log_w = torch.cat([model.log_weights(x, 15), model.log_weights(x, 15), model.log_weights(x, 15),
                       model.log_weights(x, 5)])
    torch.testing.assert_close(estimate, log_w.logsumexp(0) - math.log(50))
    torch.manual_seed(4)
    k1 = hierarchical_iwae(model, x.repeat(400, 1), k=1).view(400, 4).mean(0)
    torch.manual_seed(4)
    elbo = -torch.stack([model.loss(x)["loss"] for _ in range(400)]).mean(0)
    torch.testing.assert_close(k1, elbo, atol=1.0, rtol=0)


def test_hierarchy_samples_shapes_and_errors():
    model = small_hierarchy()
    assert model.sample(3).shape == (3, 784) and model.encode(digits(2))[0].shape == (2, 4)
    assert model.generate(torch.zeros(2, 2), torch.zeros(2, 4)).shape == (2, 784)
    with pytest.raises(ValueError, match="two sizes"):
        HierarchicalVAE(latent_dims=[20])
    with pytest.raises(ValueError, match="k must be"):
        hierarchical_iwae(model, digits(2), k=0)
    with pytest.raises(ValueError, match="needs a HierarchicalVAE"):
        hierarchical_iwae(vaelib.VAE(), digits(2), k=2)


def test_hierarchy_checkpoint_round_trip(tmp_path):
    model = small_hierarchy()
    again = vaelib.load_checkpoint(vaelib.save_checkpoint(model, tmp_path / "h.pt"))
    x = digits(2)
    torch.testing.assert_close(again.encode(x), model.encode(x))


def test_quantize_picks_the_nearest_codebook_vector_by_brute_force():
    g = torch.Generator().manual_seed(0)
    z_e, codebook = torch.randn(2, 3, 4, 5, generator=g), torch.randn(7, 3, generator=g)
    codes, z_q = quantize(z_e, codebook)
    assert codes.shape == (2, 20) and z_q.shape == z_e.shape
    for b in range(2):
        for i in range(4):
            for j in range(5):
                nearest = ((codebook - z_e[b, :, i, j]) ** 2).sum(1).argmin()
                assert codes[b, i * 5 + j] == nearest
                torch.testing.assert_close(z_q[b, :, i, j], codebook[nearest])
    with pytest.raises(ValueError, match="same D"):
        quantize(z_e, torch.randn(7, 2))


def test_straight_through_gives_z_q_forward_and_copies_the_gradient_back():
    z_e = torch.randn(2, 3, requires_grad=True)
    z_q = torch.randn(2, 3)
    out = straight_through(z_e, z_q)
    torch.testing.assert_close(out, z_q)
    weights = torch.randn(2, 3)
    (out * weights).sum().backward()
    torch.testing.assert_close(z_e.grad, weights)


def test_codebook_usage_against_categorical_entropy():
    codes = torch.tensor([[0, 0, 1, 3], [0, 1, 1, 1]])
    p = torch.tensor([3, 4, 0, 1, 0], dtype=torch.float64) / 8
    perplexity, dead = codebook_usage(codes, 5)
    assert math.isclose(perplexity, Categorical(probs=p).entropy().exp().item(), rel_tol=1e-9) and dead == 2
    assert codebook_usage(torch.arange(6), 6) == pytest.approx((6.0, 0))
    with pytest.raises(ValueError, match="lie in 0..4"):
        codebook_usage(torch.tensor([5]), 5)
    with pytest.raises(ValueError, match="integer codes"):
        codebook_usage(torch.tensor([0.5]), 5)


def test_vqvae_loss_terms_gradients_and_shapes():
    torch.manual_seed(0)
    model = VQVAE(num_codes=8, code_dim=4, channels=[4, 8])
    x = digits(3)
    codes = model.encode(x)
    assert codes.shape == (3, 49) and codes.dtype == torch.int64 and model.decode(codes).shape == (3, 784)
    parts = model.loss(x)
    z_e = model.encode_continuous(x)
    _, z_q = quantize(z_e, model.codebook.weight)
    torch.testing.assert_close(parts["codebook"], ((z_e - z_q) ** 2).sum((1, 2, 3)))
    torch.testing.assert_close(parts["commitment"], 0.25 * parts["codebook"])
    torch.testing.assert_close(parts["recon"], -vaelib.bernoulli_log_likelihood(x, model.decode(codes)))
    parts["loss"].sum().backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0 and model.codebook.weight.grad.abs().sum() > 0
    assert model.sample(2).shape == (2, 784)
    with pytest.raises(ValueError, match="integer codes"):
        model.decode(torch.zeros(2, 49))
    with pytest.raises(ValueError, match="two numbers"):
        VQVAE(channels=[4])


def test_code_priors_by_brute_force():
    codes = torch.tensor([[0, 1, 1], [0, 2, 1], [1, 1, 0], [0, 1, 1]])
    position = PositionPrior(codes, 3, smoothing=0.0)
    torch.testing.assert_close(position.probs[0], torch.tensor([0.75, 0.25, 0.0], dtype=torch.float64))
    expected = math.log(0.75) + math.log(0.75) + math.log(0.75)
    assert math.isclose(position.log_prob(codes[:1]).item(), expected, rel_tol=1e-9)
    markov = MarkovPrior(codes, 3, smoothing=0.0)
    # p(0) p(1 | 0 at position 1) p(1 | 1 at position 2) = 3/4 * 2/3 * 2/3
    assert math.isclose(markov.log_prob(codes[:1]).item(), math.log(0.75 * 2 / 3 * 2 / 3), rel_tol=1e-9)
    smoothed = MarkovPrior(codes, 3, smoothing=1.0)
    every = torch.cartesian_prod(*[torch.arange(3)] * 3)                 # all 27 code strings: probabilities sum to 1
    torch.testing.assert_close(smoothed.log_prob(every).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(PositionPrior(codes, 3).log_prob(every).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    assert smoothed.sample(5, generator=g).shape == (5, 3) and position.sample(5, generator=g).shape == (5, 3)
    assert math.isclose(uniform_prior_kl(32), 49 * math.log(32))
    with pytest.raises(ValueError, match="integer codes"):
        PositionPrior(codes.float(), 3)


def test_the_plain_iwae_estimate_refuses_a_model_with_its_own_prior():
    model = vaelib.HierarchicalVAE(hidden=[8], latent_dims=[3, 2], top_hidden=4)
    with pytest.raises(ValueError, match="prior of its own.*hierarchical_iwae"):
        vaelib.iwae_log_likelihood(model, torch.rand(2, 784), k=2)
