"""vaelib.models: architecture, shapes, input checks with helpful messages, and the two sigma heads."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import vaelib
from vaelib import models


@pytest.fixture
def x():
    return torch.rand(6, 784, generator=torch.Generator().manual_seed(0))


def layer_summary(sequential):
    return [(type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None))
            for m in sequential]


# --- Autoencoder ---------------------------------------------------------------------------------

def test_autoencoder_mirrors_its_sizes():
    model = vaelib.Autoencoder([10, 5, 2])
    assert layer_summary(model.encoder) == [("Linear", 10, 5), ("ReLU", None, None), ("Linear", 5, 2)]
    assert layer_summary(model.decoder) == [("Linear", 2, 5), ("ReLU", None, None), ("Linear", 5, 10)]
    assert model.latent_dim == 2 and model.config == {"sizes": [10, 5, 2], "likelihood": "bernoulli"}
    x = torch.rand(3, 10)
    assert model.encode(x).shape == (3, 2) and model(x).shape == (3, 10)


def test_autoencoder_default_and_deeper():
    assert layer_summary(vaelib.Autoencoder().encoder) == [("Linear", 784, 256), ("ReLU", None, None),
                                                          ("Linear", 256, 2)]
    deep = vaelib.Autoencoder([784, 128, 32, 3])
    widths = [(m.in_features, m.out_features) for m in deep.decoder if isinstance(m, nn.Linear)]
    assert widths == [(3, 32), (32, 128), (128, 784)]
    assert not isinstance(deep.encoder[-1], nn.ReLU) and not isinstance(deep.decoder[-1], nn.ReLU)


def test_autoencoder_methods(x):
    torch.manual_seed(0)
    model = vaelib.Autoencoder([784, 16, 2])
    z = model.encode(x)
    assert z.shape == (6, 2)
    recon = model.reconstruct(x)
    assert recon.shape == (6, 784) and 0 <= recon.min() and recon.max() <= 1
    torch.testing.assert_close(recon, torch.sigmoid(model(x)))
    torch.testing.assert_close(model.decode_images(z), recon)
    parts = model.loss(x)
    assert set(parts) == {"loss", "recon"} and parts["loss"].shape == (6,)
    torch.testing.assert_close(parts["loss"], F.binary_cross_entropy_with_logits(model(x), x, reduction="none").sum(-1))
    assert torch.equal(model.loss(x, beta=5.0)["loss"], parts["loss"])  # beta is ignored


def test_gaussian_autoencoder_clamps_images(x):
    torch.manual_seed(0)
    model = vaelib.Autoencoder([784, 16, 2], likelihood="gaussian")
    with torch.no_grad():
        model.decoder[-1].bias.fill_(3.0)  # means far above 1
    recon = model.reconstruct(x)
    assert recon.max() == 1.0 and recon.min() >= 0
    expected = 0.5 * ((x - model(x)) ** 2).sum(-1) + 784 * 0.5 * torch.log(torch.tensor(2 * torch.pi))
    torch.testing.assert_close(model.loss(x)["loss"], expected)


@pytest.mark.parametrize("make", [lambda: vaelib.Autoencoder([784, 16, 2]),
                                  lambda: vaelib.VAE(hidden=(16,), latent_dim=2)])
def test_flat_and_image_inputs_agree(make, x):
    torch.manual_seed(0)
    model = make().eval()
    images = x.view(6, 1, 28, 28)
    if isinstance(model, vaelib.VAE):
        for a, b in zip(model.encode(x), model.encode(images)):
            assert torch.equal(a, b)
        assert torch.equal(model.code(x), model.code(x.view(6, 28, 28)))
        torch.manual_seed(1)
        flat = model.loss(x)["loss"]
        torch.manual_seed(1)
        assert torch.equal(model.loss(images)["loss"], flat)
    else:
        assert torch.equal(model(x), model(images))
        assert torch.equal(model.loss(x)["loss"], model.loss(images)["loss"])
    assert torch.equal(model.reconstruct(x), model.reconstruct(images))


@pytest.mark.parametrize("make", [lambda: vaelib.Autoencoder([784, 16, 2]),
                                  lambda: vaelib.VAE(hidden=(16,), latent_dim=2)])
@pytest.mark.parametrize("bad, error, message", [
    (torch.rand(32, 28), ValueError,
     r"expected inputs of shape \(batch, 784\), \(batch, 1, 28, 28\) or \(batch, 28, 28\), got \(32, 28\)"),
    (torch.rand(784), ValueError, r"got \(784,\)"),
    (torch.rand(2, 28, 29), ValueError, r"got \(2, 28, 29\)"),
    (torch.rand(2, 3, 28, 28), ValueError, r"got \(2, 3, 28, 28\)"),
    (torch.zeros(2, 784, dtype=torch.uint8), TypeError,
     r"floating-point tensor, got torch.uint8 \(divide uint8 images by 255\)"),
    (torch.zeros(2, 784, dtype=torch.int64), TypeError, "floating-point tensor, got torch.int64"),
    ([[0.0] * 784], TypeError, "expected a torch.Tensor, got list"),
    (None, TypeError, "expected a torch.Tensor, got NoneType"),
])
def test_bad_inputs_say_what_was_expected(make, bad, error, message):
    model = make()
    with pytest.raises(error, match=message):
        model.encode(bad)
    with pytest.raises(error, match=message):
        model.loss(bad)


def test_small_autoencoder_input_message():
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 10\), got \(3, 784\)"):
        vaelib.Autoencoder([10, 5, 2])(torch.rand(3, 784))


def test_decode_checks_codes():
    with pytest.raises(ValueError, match=r"\(batch, 2\), got \(4, 3\)"):
        vaelib.VAE(hidden=(8,), latent_dim=2).decode(torch.rand(4, 3))
    with pytest.raises(ValueError, match=r"\(batch, 2\), got \(2,\)"):
        vaelib.Autoencoder([784, 8, 2]).decode(torch.rand(2))


@pytest.mark.parametrize("cls, kwargs", [(vaelib.VAE, {"head": "exp"}), (vaelib.VAE, {"likelihood": "poisson"}),
                                         (vaelib.Autoencoder, {"likelihood": "mse"}),
                                         (vaelib.GaussianEncoder, {"head": "softmax"})])
def test_bad_choices(cls, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} must be one of .*got '{kwargs[name]}'"):
        cls(**kwargs)


def test_mlp_needs_two_sizes():
    with pytest.raises(ValueError, match="at least an input and an output size"):
        models.mlp([5])


# --- GaussianEncoder ---------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["softplus", "logvar"])
def test_gaussian_encoder_sigma_is_positive(head, x):
    torch.manual_seed(0)
    encoder = vaelib.GaussianEncoder([784, 32], latent_dim=3, head=head)
    with torch.no_grad():  # push the spread head to extremes: sigma must stay positive
        encoder.spread.bias.copy_(torch.tensor([-30.0, 0.0, 30.0]))
    mu, sigma = encoder(x)
    assert mu.shape == sigma.shape == (6, 3)
    assert (sigma > 0).all() and torch.isfinite(sigma).all()


def test_gaussian_encoder_heads_transform_the_raw_output(x):
    torch.manual_seed(0)
    encoder = vaelib.GaussianEncoder([784, 32], latent_dim=4, head="logvar")
    raw = encoder.spread(encoder.body(x))
    mu, sigma = encoder(x)
    torch.testing.assert_close(sigma, torch.exp(0.5 * raw))
    torch.testing.assert_close(mu, encoder.mu(encoder.body(x)))
    encoder.head = "softplus"
    torch.testing.assert_close(encoder(x)[1], F.softplus(raw))


def test_gaussian_encoder_body_ends_with_relu():
    encoder = vaelib.GaussianEncoder([784, 64, 32], latent_dim=2)
    assert layer_summary(encoder.body) == [("Linear", 784, 64), ("ReLU", None, None),
                                           ("Linear", 64, 32), ("ReLU", None, None)]
    assert (encoder.mu.in_features, encoder.mu.out_features) == (32, 2)


# --- VAE -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["softplus", "logvar"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_shapes(head, likelihood, x):
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(32, 16), latent_dim=5, head=head, likelihood=likelihood)
    assert model.config == {"input_dim": 784, "hidden": [32, 16], "latent_dim": 5, "head": head,
                            "likelihood": likelihood}
    assert model.latent_dim == 5
    mu, sigma = model.encode(x)
    assert mu.shape == sigma.shape == (6, 5) and (sigma > 0).all()
    z = model.reparameterize(mu, sigma)
    assert z.shape == (6, 5)
    assert model.decode(z).shape == (6, 784)
    output, mu2, sigma2 = model(x)
    assert output.shape == (6, 784) and torch.equal(mu2, mu) and torch.equal(sigma2, sigma)
    parts = model.loss(x, beta=0.5)
    assert set(parts) == {"loss", "recon", "kl"} and all(v.shape == (6,) for v in parts.values())
    torch.testing.assert_close(parts["loss"], parts["recon"] + 0.5 * parts["kl"])
    recon = model.reconstruct(x)
    assert recon.shape == (6, 784) and 0 <= recon.min() and recon.max() <= 1
    torch.testing.assert_close(recon, model.decode_images(mu))  # decoded from the posterior mean


def test_vae_decoder_mirrors_the_encoder():
    model = vaelib.VAE(hidden=(64, 16), latent_dim=3)
    widths = [(m.in_features, m.out_features) for m in model.decoder.net if isinstance(m, nn.Linear)]
    assert widths == [(3, 16), (16, 64), (64, 784)]


def test_reparameterize_is_random_and_differentiable():
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(8,), latent_dim=2)
    mu = torch.zeros(4, 2, requires_grad=True)
    sigma = torch.ones(4, 2, requires_grad=True)
    z1, z2 = model.reparameterize(mu, sigma), model.reparameterize(mu, sigma)
    assert not torch.equal(z1, z2)
    z1.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(4, 2))
    torch.testing.assert_close(sigma.grad, (z1 - mu).detach())  # dz/dsigma = eps
    assert torch.equal(model.reparameterize(mu, torch.zeros(4, 2)), mu)


def test_vae_sample():
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(16,), latent_dim=4)
    images = model.sample(7)
    assert images.shape == (7, 784) and not images.requires_grad
    assert 0 <= images.min() and images.max() <= 1
    cold = model.sample(3, temperature=0.0)  # every sample is the decoded prior mean
    torch.testing.assert_close(cold, model.decode_images(torch.zeros(3, 4)).detach())
    gaussian = vaelib.VAE(hidden=(16,), latent_dim=4, likelihood="gaussian")
    samples = gaussian.sample(50, temperature=3.0)
    assert 0 <= samples.min() and samples.max() <= 1


def test_vae_custom_input_dim():
    model = vaelib.VAE(input_dim=10, hidden=(6,), latent_dim=2)
    assert model(torch.rand(3, 10))[0].shape == (3, 10)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 10\), got \(3, 1, 28, 28\)"):
        model(torch.rand(3, 1, 28, 28))


# --- the protocol: every model the same way ------------------------------------------------------

PROTOCOL = {
    "Autoencoder": lambda: vaelib.Autoencoder([784, 16, 2]),
    "VAE": lambda: vaelib.VAE(hidden=(16,), latent_dim=2),
    "ConvVAE": lambda: vaelib.ConvVAE(latent_dim=2, channels=(4, 8)),
    "ConditionalVAE": lambda: vaelib.ConditionalVAE(hidden=(16,), latent_dim=2),
}


@pytest.mark.parametrize("name", sorted(PROTOCOL))
def test_every_model_provides_the_protocol(name, x):
    torch.manual_seed(0)
    model = PROTOCOL[name]().eval()
    assert isinstance(model, models.Model) and model.likelihood == "bernoulli"
    assert (model.input_dim, model.latent_dim) == (784, 2)
    assert model.conditional == (name == "ConditionalVAE") and model.variational == (name != "Autoencoder")
    y = torch.arange(6) % 10 if model.conditional else None
    code = model.code(x, y)
    assert code.shape == (6, 2)
    encoded = model.encode(x, y)
    torch.testing.assert_close(code, encoded[0] if model.variational else encoded)
    assert model.decode(code, y).shape == (6, 784)
    images = model.decode_images(code, y)
    assert images.shape == (6, 784) and 0 <= images.min() and images.max() <= 1
    torch.testing.assert_close(model.reconstruct(x, y), images)
    assert model.sample(6, labels=y).shape == (6, 784)
    parts = model.loss(x, beta=2.0, labels=y)
    assert {"loss", "recon"} <= set(parts) and all(v.shape == (6,) for v in parts.values())
    if model.variational:
        torch.testing.assert_close(parts["loss"], parts["recon"] + 2.0 * parts["kl"])


def test_conv_vae_and_conditional_vae_are_vaes_with_other_networks():
    for name in ("ConvVAE", "ConditionalVAE"):
        cls = type(PROTOCOL[name]())
        assert issubclass(cls, vaelib.VAE)
        for method in ("encode", "decode", "loss", "reparameterize", "forward", "sample", "reconstruct"):
            assert getattr(cls, method) is getattr(vaelib.VAE, method) or method == "sample", (name, method)
    conv = PROTOCOL["ConvVAE"]()
    assert conv.config == {"latent_dim": 2, "channels": [4, 8], "head": "softplus", "likelihood": "bernoulli"}


def test_labels_are_required_by_a_conditional_model_and_refused_by_the_others(x):
    cvae, vae = PROTOCOL["ConditionalVAE"](), PROTOCOL["VAE"]()
    y = torch.arange(6) % 10
    for call in (lambda: cvae.encode(x), lambda: cvae.loss(x), lambda: cvae.decode(torch.zeros(6, 2)),
                 lambda: cvae.sample(6), lambda: cvae.reconstruct(x)):
        with pytest.raises(ValueError, match=r"ConditionalVAE is conditional: pass the labels \(batch,\) too"):
            call()
    for call in (lambda: vae.encode(x, y), lambda: vae.loss(x, labels=y), lambda: vae.decode(torch.zeros(6, 2), y),
                 lambda: vae.sample(6, labels=y), lambda: PROTOCOL["Autoencoder"]().loss(x, labels=y)):
        with pytest.raises(ValueError, match="is not conditional: it takes no labels"):
            call()
    with pytest.raises(ValueError, match="got 6 inputs but 5 labels"):
        cvae.encode(x, y[:5])
    with pytest.raises(ValueError, match=r"labels must lie in 0..9, got 0..10"):
        cvae.encode(x, torch.tensor([0, 1, 2, 3, 4, 10]))


# --- bad values: NaN, infinity, images in 0..255 (issue 10, section 6) --------------------------

@pytest.mark.parametrize("name", sorted(PROTOCOL))
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_images_with_nan_or_infinity_are_refused(name, bad, x):
    model = PROTOCOL[name]()
    y = torch.arange(6) % 10 if model.conditional else None
    x = x.clone()
    x[3, 100] = float(bad)
    for call in (lambda: model.loss(x, labels=y), lambda: model.encode(x, y), lambda: model.reconstruct(x, y)):
        with pytest.raises(ValueError, match="images contain NaN or infinity; expected finite pixel values"):
            call()


@pytest.mark.parametrize("name", sorted(PROTOCOL))
def test_images_in_0_to_255_are_refused_by_a_bernoulli_model(name, x):
    model = PROTOCOL[name]()
    y = torch.arange(6) % 10 if model.conditional else None
    with pytest.raises(ValueError, match=r"images hold values from 0\.\d+ to 25\d\.\d+; a Bernoulli likelihood "
                                         r"expects pixel values in \[0, 1\] \(images in 0\.\.255\? divide them by 255\)"):
        model.loss(x * 255, labels=y)
    with pytest.raises(ValueError, match=r"from -0\.9\d+ to 0\.9\d+; a Bernoulli likelihood expects pixel values in \[0, 1\]$"):
        model.encode(x * 2 - 1, y)


def test_a_gaussian_model_takes_any_finite_values(x):
    model = vaelib.VAE(hidden=(16,), latent_dim=2, likelihood="gaussian")
    assert torch.isfinite(model.loss(x * 255)["loss"]).all()
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.loss(torch.full((2, 784), float("nan")))


@pytest.mark.parametrize("build, message", [
    (lambda: vaelib.VAE(latent_dim=0), "latent_dim must be a whole number >= 1, got 0"),
    (lambda: vaelib.VAE(hidden=(2.5,)), "each of hidden must be a whole number >= 1, got 2.5"),
    (lambda: vaelib.VAE(hidden=256), r"hidden must be a list of sizes, e.g. \[256\], got 256"),
    (lambda: vaelib.Autoencoder([784, 0, 2]), "each of sizes must be a whole number >= 1, got 0"),
    (lambda: vaelib.ConvVAE(channels=(0, 4)), "each of channels must be a whole number >= 1, got 0"),
    (lambda: vaelib.ConvVAE(latent_dim=-1), "latent_dim must be a whole number >= 1"),
    (lambda: vaelib.ConditionalVAE(num_classes=1), "needs num_classes >= 2, got 1"),
    (lambda: vaelib.VAE(input_dim=0), "input_dim must be a whole number >= 1"),
])
def test_sizes_that_cannot_make_a_model_are_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("n, temperature", [(0, 1.0), (-1, 1.0), (2.5, 1.0), (3, -1.0), (3, float("nan")), (3, float("inf"))])
def test_sample_refuses_counts_and_temperatures_that_mean_nothing(n, temperature):
    with pytest.raises(ValueError, match="whole number n >= 1 and a finite temperature >= 0"):
        vaelib.VAE(hidden=(8,)).sample(n, temperature=temperature)
