"""The models of the series: an autoencoder and a variational autoencoder, both plain MLPs.

Shapes: images come in as ``(batch, 784)`` or ``(batch, 1, 28, 28)``; codes are
``(batch, latent_dim)``; decoders return ``(batch, 784)`` logits (Bernoulli) or means (Gaussian).
Every model keeps its constructor arguments in ``model.config`` so a checkpoint can rebuild it.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import LIKELIHOODS, negative_elbo, reconstruction_log_likelihood

HEADS = ("softplus", "logvar")


def flatten_inputs(x, features):
    """Check ``x`` and return it as ``(batch, features)``.

    Accepts ``(batch, features)``, and for 28 x 28 images (features = 784) also ``(batch, 1, 28, 28)``.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}"
                        + (" (divide uint8 images by 255)" if x.dtype == torch.uint8 else ""))
    if x.dim() == 2 and x.shape[1] == features:
        return x
    if features == 784 and x.dim() == 4 and tuple(x.shape[1:]) == (1, 28, 28):
        return x.reshape(len(x), 784)
    expected = f"(batch, {features})" + (" or (batch, 1, 28, 28)" if features == 784 else "")
    raise ValueError(f"expected inputs of shape {expected}, got {tuple(x.shape)}")


def mlp(sizes, activate_last=False):
    """Linear layers of the given sizes with ReLU between them, e.g. ``mlp([10, 5, 2])``."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {list(sizes)}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if activate_last or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _output_to_images(output, likelihood):
    """Decoder output -> pixel values in [0, 1] (sigmoid of logits, or clamped Gaussian means)."""
    return torch.sigmoid(output) if likelihood == "bernoulli" else output.clamp(0, 1)


class Autoencoder(nn.Module):
    """``x_hat = decode(encode(x))`` through a bottleneck.

    ``sizes`` lists the encoder's widths, input first and code last; the decoder mirrors them.
    ``Autoencoder([10, 5, 2])`` is 10 -> 5 -> 2 -> 5 -> 10; ``Autoencoder([784, 256, 2])`` is the
    MNIST one of notebook 01, whose output is read as Bernoulli logits.
    """

    def __init__(self, sizes=(784, 256, 2), likelihood="bernoulli"):
        super().__init__()
        _check_choice("likelihood", likelihood, LIKELIHOODS)
        sizes = [int(s) for s in sizes]
        self.config = {"sizes": sizes, "likelihood": likelihood}
        self.encoder = mlp(sizes)
        self.decoder = mlp(sizes[::-1])

    @property
    def latent_dim(self):
        return self.config["sizes"][-1]

    def flatten(self, x):
        return flatten_inputs(x, self.config["sizes"][0])

    def encode(self, x):
        """``(batch, D)`` -> codes ``(batch, latent_dim)``."""
        return self.encoder(self.flatten(x))

    def decode(self, z):
        """``(batch, latent_dim)`` -> ``(batch, D)`` decoder output (logits for Bernoulli)."""
        return self.decoder(flatten_inputs(z, self.latent_dim))

    def forward(self, x):
        return self.decode(self.encode(x))

    def decode_images(self, z):
        """Codes -> ``(batch, D)`` pixel values in [0, 1]."""
        return _output_to_images(self.decode(z), self.config["likelihood"])

    def reconstruct(self, x):
        """Images -> ``(batch, D)`` reconstructions in [0, 1]."""
        return self.decode_images(self.encode(x))

    def loss(self, x, beta=None):
        """Per-example reconstruction loss ``-log p(x | x_hat)``: dict with ``"loss"`` and ``"recon"``, ``(batch,)`` nats.

        ``beta`` is accepted (and ignored) so that :func:`vaelib.train.fit` trains both models alike.
        """
        x = self.flatten(x)
        recon = -reconstruction_log_likelihood(x, self(x), self.config["likelihood"])
        return {"loss": recon, "recon": recon}


class GaussianEncoder(nn.Module):
    """Encoder that outputs a diagonal Gaussian q(z | x) = N(mu, diag(sigma^2)).

    An MLP body, then two linear heads: one for ``mu`` and one for the spread, turned into a
    standard deviation by the chosen ``head``:

    * ``"softplus"`` (default): ``sigma = softplus(s)``. Grows linearly, so a large output cannot
      overflow; its gradient is at most 1. The seed notebook's choice.
    * ``"logvar"``: the head predicts ``log sigma^2`` and ``sigma = exp(logvar / 2)``, as in
      Kingma & Welling (2013). Any real output is valid, but exp can blow up early in training.

    ``forward(x)`` returns ``(mu, sigma)``, both ``(batch, latent_dim)``, whatever the head.
    """

    def __init__(self, sizes=(784, 256), latent_dim=2, head="softplus"):
        super().__init__()
        _check_choice("head", head, HEADS)
        self.head = head
        self.input_dim = sizes[0]
        self.body = mlp(sizes, activate_last=True)
        self.mu = nn.Linear(sizes[-1], latent_dim)
        self.spread = nn.Linear(sizes[-1], latent_dim)

    def forward(self, x):
        h = self.body(flatten_inputs(x, self.input_dim))
        s = self.spread(h)
        sigma = F.softplus(s) if self.head == "softplus" else torch.exp(0.5 * s)
        return self.mu(h), sigma


class Decoder(nn.Module):
    """MLP from codes ``(batch, latent_dim)`` to ``(batch, D)`` outputs: Bernoulli logits for images."""

    def __init__(self, latent_dim=2, sizes=(256, 784)):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp([latent_dim, *sizes])

    def forward(self, z):
        return self.net(flatten_inputs(z, self.latent_dim))


class VAE(nn.Module):
    """Variational autoencoder: Gaussian encoder, reparameterized sample, Bernoulli decoder.

    ``VAE(hidden=(400,), latent_dim=20)`` is the classic 784-400-20 model of Kingma & Welling.
    """

    def __init__(self, input_dim=784, hidden=(256,), latent_dim=2, head="softplus", likelihood="bernoulli"):
        super().__init__()
        _check_choice("likelihood", likelihood, LIKELIHOODS)
        hidden = [int(h) for h in hidden]
        self.config = {"input_dim": int(input_dim), "hidden": hidden, "latent_dim": int(latent_dim),
                       "head": head, "likelihood": likelihood}
        self.encoder = GaussianEncoder([input_dim, *hidden], latent_dim, head)
        self.decoder = Decoder(latent_dim, [*hidden[::-1], input_dim])

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    def flatten(self, x):
        return flatten_inputs(x, self.config["input_dim"])

    def encode(self, x):
        """Images -> ``(mu, sigma)`` of q(z | x), each ``(batch, latent_dim)``."""
        return self.encoder(x)

    def reparameterize(self, mu, sigma):
        """``z = mu + sigma * eps`` with ``eps ~ N(0, I)``: a sample that gradients flow through."""
        return mu + sigma * torch.randn_like(sigma)

    def decode(self, z):
        """Codes ``(batch, latent_dim)`` -> ``(batch, D)`` logits (or means if Gaussian)."""
        return self.decoder(z)

    def forward(self, x):
        """Returns ``(output, mu, sigma)``: decoder output for one sampled z, and q's parameters."""
        mu, sigma = self.encode(x)
        return self.decode(self.reparameterize(mu, sigma)), mu, sigma

    def loss(self, x, beta=1.0):
        """Per-example negative ELBO: dict of ``(batch,)`` nats, ``"loss"``, ``"recon"`` and ``"kl"``."""
        x = self.flatten(x)
        output, mu, sigma = self(x)
        return negative_elbo(x, output, mu, sigma, beta, self.config["likelihood"])

    def decode_images(self, z):
        """Codes -> ``(batch, D)`` pixel values in [0, 1] (the decoder's mean, not a sample)."""
        return _output_to_images(self.decode(z), self.config["likelihood"])

    def reconstruct(self, x):
        """Images -> ``(batch, D)`` reconstructions in [0, 1], decoded from the posterior mean."""
        return self.decode_images(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n, temperature=1.0):
        """``n`` new images ``(n, D)`` in [0, 1], decoded from z ~ N(0, temperature^2 I)."""
        if n < 1 or temperature < 0:
            raise ValueError(f"need n >= 1 and temperature >= 0, got n={n}, temperature={temperature}")
        device = next(self.parameters()).device
        return self.decode_images(temperature * torch.randn(n, self.latent_dim, device=device))


class ConvGaussianEncoder(nn.Module):
    """Convolutional q(z | x): two stride-2 convolutions (28 -> 14 -> 7), then the two linear heads.

    Input ``(batch, 784)`` or ``(batch, 1, 28, 28)``; returns ``(mu, sigma)``, each ``(batch, latent_dim)``.
    """

    def __init__(self, latent_dim=20, channels=(32, 64), head="softplus"):
        super().__init__()
        _check_choice("head", head, HEADS)
        c1, c2 = channels
        self.head = head
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),    # (batch, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),   # (batch, c2, 7, 7)
            nn.Flatten(),                                           # (batch, c2 * 49)
        )
        self.mu = nn.Linear(c2 * 49, latent_dim)
        self.spread = nn.Linear(c2 * 49, latent_dim)

    def forward(self, x):
        h = self.body(flatten_inputs(x, 784).view(-1, 1, 28, 28))
        s = self.spread(h)
        sigma = F.softplus(s) if self.head == "softplus" else torch.exp(0.5 * s)
        return self.mu(h), sigma


class ConvDecoder(nn.Module):
    """Codes ``(batch, latent_dim)`` -> ``(batch, 784)`` logits, through two transposed convolutions (7 -> 14 -> 28)."""

    def __init__(self, latent_dim=20, channels=(32, 64)):
        super().__init__()
        c1, c2 = channels
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, c2 * 49), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),   # (batch, c1, 14, 14)
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),               # (batch, 1, 28, 28)
            nn.Flatten(),
        )

    def forward(self, z):
        return self.net(flatten_inputs(z, self.latent_dim))


class ConvVAE(VAE):
    """A VAE with a convolutional encoder and decoder; everything else as in :class:`VAE`."""

    def __init__(self, latent_dim=20, channels=(32, 64), head="softplus", likelihood="bernoulli"):
        nn.Module.__init__(self)
        _check_choice("likelihood", likelihood, LIKELIHOODS)
        channels = [int(c) for c in channels]
        if len(channels) != 2:
            raise ValueError(f"channels must be two numbers (first and second convolution), got {channels}")
        self.config = {"latent_dim": int(latent_dim), "channels": channels, "head": head,
                       "likelihood": likelihood}
        self.encoder = ConvGaussianEncoder(latent_dim, channels, head)
        self.decoder = ConvDecoder(latent_dim, channels)

    def flatten(self, x):
        return flatten_inputs(x, 784)


def one_hot_labels(labels, num_classes):
    """int64 labels ``(batch,)`` in 0..num_classes-1 -> float one-hot ``(batch, num_classes)``, checked."""
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"expected integer labels of shape (batch,), got "
                         f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {labels.min().item()}..{labels.max().item()}")
    return F.one_hot(labels.long(), num_classes).float()


class ConditionalVAE(nn.Module):
    """A VAE whose encoder and decoder both see the label: q(z | x, y) and p(x | z, y).

    The label is given as a one-hot vector concatenated to the input of each network, so z is
    free to hold only what the label does not say: the *style* (slant, width, stroke).
    Every method takes the labels ``(batch,)`` as well; ``model.conditional`` tells :func:`vaelib.fit`.
    """

    conditional = True

    def __init__(self, num_classes=10, input_dim=784, hidden=(256,), latent_dim=2, head="softplus",
                 likelihood="bernoulli"):
        super().__init__()
        _check_choice("likelihood", likelihood, LIKELIHOODS)
        hidden = [int(h) for h in hidden]
        self.config = {"num_classes": int(num_classes), "input_dim": int(input_dim), "hidden": hidden,
                       "latent_dim": int(latent_dim), "head": head, "likelihood": likelihood}
        self.encoder = GaussianEncoder([input_dim + num_classes, *hidden], latent_dim, head)
        self.decoder = Decoder(latent_dim + num_classes, [*hidden[::-1], input_dim])

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    def flatten(self, x):
        return flatten_inputs(x, self.config["input_dim"])

    def _with_labels(self, t, labels):
        y = one_hot_labels(labels, self.config["num_classes"]).to(t.device)
        if len(y) != len(t):
            raise ValueError(f"got {len(t)} inputs but {len(y)} labels")
        return torch.cat([t, y], dim=1)

    def encode(self, x, labels):
        """Images and labels -> ``(mu, sigma)`` of q(z | x, y), each ``(batch, latent_dim)``."""
        return self.encoder(self._with_labels(self.flatten(x), labels))

    def reparameterize(self, mu, sigma):
        return mu + sigma * torch.randn_like(sigma)

    def decode(self, z, labels):
        """Codes ``(batch, latent_dim)`` and labels -> ``(batch, D)`` logits."""
        return self.decoder(self._with_labels(flatten_inputs(z, self.latent_dim), labels))

    def forward(self, x, labels):
        mu, sigma = self.encode(x, labels)
        return self.decode(self.reparameterize(mu, sigma), labels), mu, sigma

    def loss(self, x, beta=1.0, labels=None):
        """Per-example negative ELBO given the labels: dict of ``(batch,)`` nats."""
        if labels is None:
            raise ValueError("a ConditionalVAE needs the labels: loss(x, beta, labels=y)")
        x = self.flatten(x)
        output, mu, sigma = self(x, labels)
        return negative_elbo(x, output, mu, sigma, beta, self.config["likelihood"])

    def decode_images(self, z, labels):
        return _output_to_images(self.decode(z, labels), self.config["likelihood"])

    def reconstruct(self, x, labels):
        return self.decode_images(self.encode(x, labels)[0], labels)

    @torch.no_grad()
    def sample(self, labels, temperature=1.0):
        """One image per label ``(batch,)``, decoded from z ~ N(0, temperature^2 I): ``(batch, D)`` in [0, 1]."""
        device = next(self.parameters()).device
        z = temperature * torch.randn(len(labels), self.latent_dim, device=device)
        return self.decode_images(z, labels)
