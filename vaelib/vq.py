"""Discrete codes: the VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017), its codebook, and priors over codes.

An encoder maps an image to a grid of vectors z_e ``(batch, D, 7, 7)``; each of the 49 vectors is replaced by
its nearest of ``K`` codebook vectors (``quantize``), and the decoder reads that grid z_q. The code of an
image is the ``(batch, 49)`` grid of indices into the codebook, in raster order.

Training: loss = -log p(x | z_q) + ||sg[z_e] - z_q||^2 + beta ||z_e - sg[z_q]||^2 (sg: stop gradient), with the
gradient copied straight through the quantizer (``straight_through``).

Sampling needs a distribution over the codes: :class:`PositionPrior` (one categorical per position, from
counts) and :class:`MarkovPrior` (each position given the one before it, in raster order, from counts).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import _reconstruction_log_likelihood
from .models import Model, _size, _sizes, flatten_inputs

GRID = 7  # the encoder's grid is 7 x 7 (28 -> 14 -> 7)


def quantize(z_e, codebook):
    """Nearest codebook vector of each position.

    Args:
        z_e: ``(batch, D, H, W)`` encoder outputs; codebook: ``(K, D)``.
    Returns:
        codes ``(batch, H * W)`` long indices (raster order) and z_q ``(batch, D, H, W)``, the chosen vectors.
    """
    if z_e.dim() != 4 or codebook.dim() != 2 or z_e.shape[1] != codebook.shape[1]:
        raise ValueError(f"expected z_e (batch, D, H, W) and a codebook (K, D) with the same D, "
                         f"got {tuple(z_e.shape)} and {tuple(codebook.shape)}")
    b, d, h, w = z_e.shape
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)                                     # (batch * H * W, D)
    distances = (flat**2).sum(1, keepdim=True) - 2 * flat @ codebook.T + (codebook**2).sum(1)   # (.., K)
    codes = distances.argmin(dim=1)
    z_q = codebook[codes].view(b, h, w, d).permute(0, 3, 1, 2)
    return codes.view(b, h * w), z_q


def straight_through(z_e, z_q):
    """``z_e + (z_q - z_e).detach()``: the value of ``z_q``, the gradient of ``z_e`` (copied through unchanged)."""
    return z_e + (z_q - z_e).detach()


def codebook_usage(codes, num_codes):
    """How a set of codes uses a codebook of ``num_codes`` vectors.

    Args:
        codes: long tensor of any shape (e.g. ``(N, 49)``): every index used, over the whole set.
    Returns:
        ``(perplexity, dead)``: exp of the entropy (nats) of the codes' frequencies over the whole set (1: one
        code used; ``num_codes``: all used equally), and the number of codes never used.
    """
    if codes.dtype not in (torch.int64, torch.int32) or codes.numel() == 0:
        raise ValueError(f"expected a non-empty tensor of integer codes, got {codes.dtype} {tuple(codes.shape)}")
    if codes.min() < 0 or codes.max() >= num_codes:
        raise ValueError(f"codes must lie in 0..{num_codes - 1}, got {codes.min().item()}..{codes.max().item()}")
    p = torch.bincount(codes.flatten().long(), minlength=num_codes).double() / codes.numel()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return entropy.exp().item(), int((p == 0).sum())


class VQVAE(Model):
    """A small convolutional VQ-VAE on 28 x 28 images: a 7 x 7 grid of codes, each one of ``num_codes``.

    Encoder: 28 -> 14 -> 7 (two stride-2 convolutions), then a 1 x 1 convolution to ``code_dim`` channels.
    Decoder: a 1 x 1 convolution, then 7 -> 14 -> 28 (two transposed convolutions) to ``(batch, 784)`` logits.
    ``commitment`` is beta of the commitment term (0.25 in the paper).

    Protocol (see :class:`vaelib.models.Model`): not variational; ``encode(x)`` gives the codes ``(batch, 49)``
    (long), ``decode(codes)`` the logits; ``loss`` returns ``"loss"``, ``"recon"``, ``"codebook"`` and
    ``"commitment"`` (``fit``'s beta does not apply); ``sample(n, prior)`` draws codes from a prior.
    """

    variational = False

    def __init__(self, num_codes=32, code_dim=16, channels=(32, 64), commitment=0.25, likelihood="bernoulli"):
        channels = _sizes("channels", channels)
        if len(channels) != 2:
            raise ValueError(f"channels must be two numbers (first and second convolution), got {channels}")
        if not 0 <= commitment < float("inf"):
            raise ValueError(f"commitment must be a finite number >= 0, got {commitment!r}")
        super().__init__(num_codes=_size("num_codes", num_codes), code_dim=_size("code_dim", code_dim),
                         channels=channels, commitment=float(commitment), likelihood=likelihood)
        self.codebook = nn.Embedding(num_codes, code_dim)
        self.codebook.weight.data.uniform_(-1 / num_codes, 1 / num_codes)

    def networks(self, num_codes, code_dim, channels, commitment, likelihood):
        c1, c2 = channels
        encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),              # (batch, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),             # (batch, c2, 7, 7)
            nn.Conv2d(c2, code_dim, 1))                                       # (batch, D, 7, 7): z_e
        decoder = nn.Sequential(
            nn.Conv2d(code_dim, c2, 1), nn.ReLU(),                            # (batch, c2, 7, 7)
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),    # (batch, c1, 14, 14)
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1), nn.Flatten())  # (batch, 784) logits
        return encoder, decoder

    @property
    def input_dim(self):
        return 784

    @property
    def latent_dim(self):
        return GRID * GRID

    @property
    def num_codes(self):
        return self.config["num_codes"]

    def encode_continuous(self, x):
        """Checked images -> z_e ``(batch, D, 7, 7)``, before quantization."""
        return self.encoder(x.view(-1, 1, 28, 28))

    def encode(self, x, labels=None):
        """Images -> codes ``(batch, 49)``: the index of the nearest codebook vector at each position."""
        return quantize(self.encode_continuous(self.with_labels(self.flatten(x), labels)), self.codebook.weight)[0]

    def embed(self, codes):
        """Codes ``(batch, 49)`` -> z_q ``(batch, D, 7, 7)``, the codebook vectors they name."""
        if codes.dtype not in (torch.int64, torch.int32) or tuple(codes.shape[1:]) != (GRID * GRID,):
            raise ValueError(f"expected integer codes of shape (batch, {GRID * GRID}), got {codes.dtype} "
                             f"{tuple(codes.shape)}")
        if len(codes) and (codes.min() < 0 or codes.max() >= self.num_codes):
            raise ValueError(f"codes must lie in 0..{self.num_codes - 1}")
        return self.codebook(codes.long()).view(-1, GRID, GRID, self.config["code_dim"]).permute(0, 3, 1, 2)

    def decode(self, z, labels=None):
        """Codes ``(batch, 49)`` -> ``(batch, 784)`` logits of p(x | z_q)."""
        return self.decoder(self.embed(self.with_labels(z, labels)))

    def loss(self, x, beta=1.0, labels=None):
        """Per-example terms, ``(batch,)`` nats (the two codebook terms: squared distances, summed over the grid).

        ``"loss"`` = ``"recon"`` + ``"codebook"`` + ``"commitment"``, with recon = -log p(x | z_q) and the gradient
        copied straight through the quantizer. ``beta`` (fit's KL weight) does not apply: there is no KL to weigh.
        """
        x = self.with_labels(self.flatten(x), labels)
        z_e = self.encode_continuous(x)
        _, z_q = quantize(z_e, self.codebook.weight)
        recon = -_reconstruction_log_likelihood(x, self.decoder(straight_through(z_e, z_q)), self.likelihood)
        codebook = ((z_e.detach() - z_q) ** 2).sum((1, 2, 3))
        commitment = self.config["commitment"] * ((z_e - z_q.detach()) ** 2).sum((1, 2, 3))
        return {"loss": recon + codebook + commitment, "recon": recon, "codebook": codebook, "commitment": commitment}

    @torch.no_grad()
    def sample(self, n, temperature=1.0, labels=None, prior=None, generator=None):
        """``n`` images ``(n, 784)`` decoded from codes drawn from ``prior`` (a :class:`PositionPrior` or
        :class:`MarkovPrior`; default: uniform over the codes at every position). ``temperature`` is unused."""
        if isinstance(n, bool) or not hasattr(n, "__index__") or n < 1:
            raise ValueError(f"need a whole number n >= 1, got {n!r}")
        if prior is None:
            codes = torch.randint(0, self.num_codes, (n, GRID * GRID), generator=generator)
        else:
            codes = prior.sample(n, generator=generator)
        return self.decode_images(codes.to(next(self.parameters()).device), labels)


def _check_codes(codes, num_codes):
    if codes.dim() != 2 or codes.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"expected integer codes of shape (N, positions), got {codes.dtype} {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= num_codes):
        raise ValueError(f"codes must lie in 0..{num_codes - 1}")


class PositionPrior:
    """One categorical per position, from counts: p(c) = prod_i p_i(c_i), p_i = (counts + smoothing) / total.

    ``PositionPrior(codes, num_codes)`` with training codes ``(N, P)``; ``probs`` is ``(P, K)``.
    """

    def __init__(self, codes, num_codes, smoothing=1.0):
        _check_codes(codes, num_codes)
        counts = F.one_hot(codes.long(), num_codes).sum(0).double() + smoothing     # (P, K)
        self.probs = counts / counts.sum(1, keepdim=True)

    def log_prob(self, codes):
        """``(N, P)`` codes -> ``(N,)`` log p(codes) in nats."""
        _check_codes(codes, self.probs.shape[1])
        return self.probs.log().gather(1, codes.long().T).T.sum(1)

    def sample(self, n, generator=None):
        """``(n, P)`` codes, each position drawn independently."""
        return torch.multinomial(self.probs.float(), n, replacement=True, generator=generator).T


class MarkovPrior:
    """A tiny autoregressive prior: p(c) = p_1(c_1) prod_{i>1} p_i(c_i | c_{i-1}), in raster order, from counts.

    ``first``: ``(K,)``; ``transitions``: ``(P - 1, K, K)``, row ``[i, a]`` the distribution of position i + 1
    after code a at position i. ``smoothing`` is added to every count.
    """

    def __init__(self, codes, num_codes, smoothing=1.0):
        _check_codes(codes, num_codes)
        codes = codes.long()
        k = num_codes
        first = torch.bincount(codes[:, 0], minlength=k).double() + smoothing
        pairs = codes[:, :-1] * k + codes[:, 1:]                                    # (N, P - 1)
        counts = torch.stack([torch.bincount(pairs[:, i], minlength=k * k) for i in range(pairs.shape[1])])
        counts = counts.view(-1, k, k).double() + smoothing
        self.first = first / first.sum()
        self.transitions = counts / counts.sum(2, keepdim=True)

    def log_prob(self, codes):
        """``(N, P)`` codes -> ``(N,)`` log p(codes) in nats."""
        _check_codes(codes, len(self.first))
        codes = codes.long()
        steps = torch.arange(codes.shape[1] - 1)
        later = self.transitions[steps, codes[:, :-1], codes[:, 1:]].log().sum(1)
        return self.first.log()[codes[:, 0]] + later

    def sample(self, n, generator=None):
        """``(n, P)`` codes, drawn position by position."""
        codes = [torch.multinomial(self.first.float(), n, replacement=True, generator=generator)]
        for i in range(len(self.transitions)):
            rows = self.transitions[i, codes[-1]].float()                           # (n, K)
            codes.append(torch.multinomial(rows, 1, generator=generator)[:, 0])
        return torch.stack(codes, dim=1)


def uniform_prior_kl(num_codes, positions=GRID * GRID):
    """KL(q || p) of a deterministic one-hot q to the uniform prior over ``num_codes`` codes at each of
    ``positions``: ``positions * log(num_codes)`` nats, whatever the image."""
    return positions * math.log(num_codes)
