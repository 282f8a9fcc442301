"""The models of the series: an autoencoder and variational autoencoders (MLP, convolutional, conditional).

Shapes: images come in as ``(batch, 784)`` or ``(batch, 1, 28, 28)``; codes are
``(batch, latent_dim)``; decoders return ``(batch, 784)`` logits (Bernoulli) or means (Gaussian).
Every model keeps its constructor arguments in ``model.config`` so a checkpoint can rebuild it.
Start with :class:`Model`: one screen says what every model provides.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import LIKELIHOODS, _negative_elbo, _reconstruction_log_likelihood, check_images

HEADS = ("softplus", "logvar")


def flatten_inputs(x, features=784):
    """The one check of image shapes: ``x`` -> a float tensor ``(batch, features)``.

    Accepts ``(batch, features)``, and for 28 x 28 images (features = 784) also ``(batch, 1, 28, 28)``
    and ``(batch, 28, 28)``. Used by the models, the plots and the widgets alike.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}"
                        + (" (divide uint8 images by 255)" if x.dtype == torch.uint8 else ""))
    if x.dim() == 2 and x.shape[1] == features:
        return x
    if features == 784 and tuple(x.shape[1:]) in ((1, 28, 28), (28, 28)):
        return x.reshape(len(x), 784)
    expected = f"(batch, {features})" + (", (batch, 1, 28, 28) or (batch, 28, 28)" if features == 784 else "")
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


def _size(name, value):
    """``value`` as an int size >= 1, or a ValueError that names it (2.5 units or 0 of them make no model)."""
    if isinstance(value, bool) or not (isinstance(value, int) or (hasattr(value, "is_integer") and value.is_integer())) \
            or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _sizes(name, values):
    """A list of sizes (see :func:`_size`), e.g. hidden layer widths."""
    if isinstance(values, (int, float)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of sizes, e.g. [256], got {values!r}")
    return [_size(f"each of {name}", v) for v in values]


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class Model(nn.Module):
    """What every vaelib model provides. ``fit``, ``evaluate``, ``iwae_log_likelihood``, the
    checkpoints and the widgets use only this.

    Declared by each model:
        ``config``       its constructor's arguments (a checkpoint rebuilds the model from them)
        ``likelihood``   ``config["likelihood"]``: ``"bernoulli"`` (``decode`` gives logits) or ``"gaussian"`` (means)
        ``conditional``  True if every method below needs the labels ``(batch,)`` too (``ConditionalVAE``);
                         False if it refuses them
        ``variational``  True if ``encode`` gives ``(mu, sigma)`` of q(z | x); False for the autoencoder,
                         whose ``encode`` gives its one deterministic code z
        ``standard_prior`` True if p(z) is N(0, I) (what ``sample`` and ``iwae_log_likelihood`` assume);
                         False for a model with a prior of its own (``HierarchicalVAE``: p(z2) p(z1 | z2))
        ``input_dim``, ``latent_dim``: sizes of an image and of a code

    Written by each model:
        ``encode(x, labels=None)``          -> ``(mu, sigma)``, each ``(batch, latent_dim)`` (autoencoder: z)
        ``decode(z, labels=None)``          -> ``(batch, D)`` decoder output: logits or means
        ``loss(x, beta=1.0, labels=None)``  -> dict of ``(batch,)`` nats: ``"loss"``, ``"recon"`` and, for a
                                               VAE, ``"kl"`` (``beta`` weights the KL; a model without one ignores it)

    Given here, from those:
        ``code(x, labels=None)``            -> ``(batch, latent_dim)``: ``mu`` for a VAE, z for the autoencoder
        ``decode_images(z, labels=None)``   -> ``(batch, D)`` pixel values in [0, 1]
        ``reconstruct(x, labels=None)``     -> ``decode_images(code(x))``
        ``sample(n, temperature=1.0, labels=None)`` -> ``(n, D)`` images decoded from z ~ N(0, temperature^2 I)
    """

    conditional = False
    variational = True
    standard_prior = True

    def __init__(self, **config):
        super().__init__()
        _check_choice("likelihood", config["likelihood"], LIKELIHOODS)
        self.config = config
        self.encoder, self.decoder = self.networks(**config)

    def networks(self, **config):
        """-> ``(encoder, decoder)`` modules, built from the config."""
        raise NotImplementedError

    @property
    def likelihood(self):
        return self.config["likelihood"]

    @property
    def input_dim(self):
        return self.config["input_dim"]

    @property
    def latent_dim(self):
        return self.config["latent_dim"]

    def flatten(self, x):
        """Check images once on the way in: shape, and values (finite; in [0, 1] for a Bernoulli model)."""
        x = flatten_inputs(x, self.input_dim)
        check_images(x, self.likelihood)
        return x

    def with_labels(self, t, labels):
        """``t`` ``(batch, n)`` as the networks take it: an unconditional model refuses labels."""
        if labels is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: it takes no labels "
                             "(a ConditionalVAE does)")
        return t

    def code(self, x, labels=None):
        return self.encode(x, labels)[0] if self.variational else self.encode(x, labels)

    def decode_images(self, z, labels=None):
        """Codes -> ``(batch, D)`` pixel values in [0, 1]: the decoder's mean, not a sample."""
        output = self.decode(z, labels)
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output.clamp(0, 1)

    def reconstruct(self, x, labels=None):
        """Images -> ``(batch, D)`` reconstructions in [0, 1], decoded from the code (a VAE's posterior mean)."""
        return self.decode_images(self.code(x, labels), labels)

    @torch.no_grad()
    def sample(self, n, temperature=1.0, labels=None):
        """``n`` new images ``(n, D)`` in [0, 1], decoded from z ~ N(0, temperature^2 I) (with ``n`` labels
        for a conditional model). An autoencoder has no prior: its "samples" show what N(0, I) codes decode to."""
        if isinstance(n, bool) or not hasattr(n, "__index__") or n < 1 or not 0 <= temperature < float("inf"):
            raise ValueError(f"need a whole number n >= 1 and a finite temperature >= 0, got n={n!r}, "
                             f"temperature={temperature!r}")
        device = next(self.parameters()).device
        return self.decode_images(temperature * torch.randn(n, self.latent_dim, device=device), labels)


class Autoencoder(Model):
    """``x_hat = decode(encode(x))`` through a bottleneck; ``encode`` gives one deterministic code z.

    ``sizes`` lists the encoder's widths, input first and code last; the decoder mirrors them.
    ``Autoencoder([10, 5, 2])`` is 10 -> 5 -> 2 -> 5 -> 10; ``Autoencoder([784, 256, 2])`` is the
    MNIST one of notebook 01, whose output is read as Bernoulli logits.
    """

    variational = False

    def __init__(self, sizes=(784, 256, 2), likelihood="bernoulli"):
        super().__init__(sizes=_sizes("sizes", sizes), likelihood=likelihood)

    def networks(self, sizes, likelihood):
        return mlp(sizes), mlp(sizes[::-1])

    @property
    def input_dim(self):
        return self.config["sizes"][0]

    @property
    def latent_dim(self):
        return self.config["sizes"][-1]

    def encode(self, x, labels=None):
        """Images ``(batch, D)`` -> codes ``(batch, latent_dim)``."""
        return self.encoder(self.with_labels(self.flatten(x), labels))

    def decode(self, z, labels=None):
        """``(batch, latent_dim)`` -> ``(batch, D)`` decoder output (logits for Bernoulli)."""
        return self.decoder(self.with_labels(flatten_inputs(z, self.latent_dim), labels))

    def forward(self, x, labels=None):
        return self.decode(self.encode(x, labels), labels)

    def loss(self, x, beta=1.0, labels=None):
        """Per-example reconstruction loss ``-log p(x | x_hat)``: dict with ``"loss"`` and ``"recon"``, ``(batch,)`` nats.

        An autoencoder has no KL term, so ``beta`` (its weight in a VAE) changes nothing.
        """
        x = self.flatten(x)
        output = self.decoder(self.encoder(self.with_labels(x, labels)))
        recon = -_reconstruction_log_likelihood(x, output, self.likelihood)
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
        return self.heads(self.body(flatten_inputs(x, self.input_dim)))

    def heads(self, h):
        """Features ``h`` of the body -> ``(mu, sigma)``."""
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


class VAE(Model):
    """Variational autoencoder: Gaussian encoder, reparameterized sample, Bernoulli decoder.

    ``VAE(hidden=(400,), latent_dim=20)`` is the 784-400-20 model of pytorch/examples ``vae/main.py``
    (Kingma & Welling, 2013, used one hidden layer of 500 tanh units on MNIST).
    :class:`ConvVAE` and :class:`ConditionalVAE` are VAEs too: they differ only in their networks.
    """

    def __init__(self, input_dim=784, hidden=(256,), latent_dim=2, head="softplus", likelihood="bernoulli"):
        super().__init__(input_dim=_size("input_dim", input_dim), hidden=_sizes("hidden", hidden),
                         latent_dim=_size("latent_dim", latent_dim), head=head, likelihood=likelihood)

    def networks(self, input_dim, hidden, latent_dim, head, likelihood):
        return GaussianEncoder([input_dim, *hidden], latent_dim, head), Decoder(latent_dim, [*hidden[::-1], input_dim])

    def encode(self, x, labels=None):
        """Images -> ``(mu, sigma)`` of q(z | x), each ``(batch, latent_dim)``."""
        return self.encoder(self.with_labels(self.flatten(x), labels))

    def reparameterize(self, mu, sigma):
        """``z = mu + sigma * eps`` with ``eps ~ N(0, I)``: a sample that gradients flow through."""
        return mu + sigma * torch.randn_like(sigma)

    def decode(self, z, labels=None):
        """Codes ``(batch, latent_dim)`` -> ``(batch, D)`` logits (or means if Gaussian)."""
        return self.decoder(self.with_labels(flatten_inputs(z, self.latent_dim), labels))

    def forward(self, x, labels=None):
        """Returns ``(output, mu, sigma)``: decoder output for one sampled z, and q's parameters."""
        mu, sigma = self.encode(x, labels)
        return self.decode(self.reparameterize(mu, sigma), labels), mu, sigma

    def loss(self, x, beta=1.0, labels=None):
        """Per-example negative ELBO: dict of ``(batch,)`` nats, ``"loss"``, ``"recon"`` and ``"kl"``."""
        x = self.flatten(x)
        mu, sigma = self.encoder(self.with_labels(x, labels))
        output = self.decode(self.reparameterize(mu, sigma), labels)
        return _negative_elbo(x, output, mu, sigma, beta, self.likelihood)


class ConvGaussianEncoder(nn.Module):
    """Convolutional q(z | x): two stride-2 convolutions (28 -> 14 -> 7), then the two linear heads.

    Input ``(batch, 784)`` or ``(batch, 1, 28, 28)``; returns ``(mu, sigma)``, each ``(batch, latent_dim)``.
    """

    heads = GaussianEncoder.heads  # the same two linear heads, after a convolutional body

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
        return self.heads(self.body(flatten_inputs(x, 784).view(-1, 1, 28, 28)))


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
    """A VAE with a convolutional encoder and decoder; everything else is :class:`VAE`'s.

    Its constructor takes other arguments than ``VAE``'s, so it hands its own config straight to
    :class:`Model`, which builds the networks from :meth:`networks`.
    """

    def __init__(self, latent_dim=20, channels=(32, 64), head="softplus", likelihood="bernoulli"):
        channels = _sizes("channels", channels)
        if len(channels) != 2:
            raise ValueError(f"channels must be two numbers (first and second convolution), got {channels}")
        Model.__init__(self, latent_dim=_size("latent_dim", latent_dim), channels=channels, head=head,
                       likelihood=likelihood)

    def networks(self, latent_dim, channels, head, likelihood):
        return ConvGaussianEncoder(latent_dim, channels, head), ConvDecoder(latent_dim, channels)

    @property
    def input_dim(self):
        return 784


def one_hot_labels(labels, num_classes):
    """int64 labels ``(batch,)`` in 0..num_classes-1 -> float one-hot ``(batch, num_classes)``, checked."""
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32):
        shape = tuple(labels.shape) if torch.is_tensor(labels) else ()
        dtype = labels.dtype if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"expected integer labels of shape (batch,), got {dtype} {shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {labels.min().item()}..{labels.max().item()}")
    return F.one_hot(labels.long(), num_classes).float()


class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder both see the label: q(z | x, y) and p(x | z, y).

    The label is given as a one-hot vector concatenated to the input of each network, so z is
    free to hold only what the label does not say: the *style* (slant, width, stroke).
    Every method takes the labels ``(batch,)`` as well, e.g. ``encode(x, y)``; all else is :class:`VAE`'s.
    """

    conditional = True

    def __init__(self, num_classes=10, input_dim=784, hidden=(256,), latent_dim=2, head="softplus",
                 likelihood="bernoulli"):
        if _size("num_classes", num_classes) < 2:
            raise ValueError(f"a conditional model needs num_classes >= 2, got {num_classes}")
        Model.__init__(self, num_classes=int(num_classes), input_dim=_size("input_dim", input_dim),
                       hidden=_sizes("hidden", hidden), latent_dim=_size("latent_dim", latent_dim), head=head,
                       likelihood=likelihood)

    def networks(self, num_classes, input_dim, hidden, latent_dim, head, likelihood):
        return (GaussianEncoder([input_dim + num_classes, *hidden], latent_dim, head),
                Decoder(latent_dim + num_classes, [*hidden[::-1], input_dim]))

    def with_labels(self, t, labels):
        """``t`` ``(batch, n)`` -> ``(batch, n + num_classes)``: the one-hot labels appended."""
        if labels is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass the labels (batch,) too, "
                             "e.g. encode(x, y), decode(z, y), loss(x, labels=y), sample(n, labels=y)")
        y = one_hot_labels(labels, self.config["num_classes"]).to(t.device)
        if len(y) != len(t):
            raise ValueError(f"got {len(t)} inputs but {len(y)} labels")
        return torch.cat([t, y], dim=1)
