"""Small figures for the notebooks: image grids, reconstructions, latent maps, loss curves.

Every function draws one small figure and returns it (``matplotlib.figure.Figure``); in a
notebook it shows itself. Images may be ``(N, 784)`` or ``(N, 1, 28, 28)`` tensors or arrays in [0, 1].
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

from .models import flatten_inputs
from .render import tile


def _as_images(images):
    """Images as :func:`vaelib.models.flatten_inputs` accepts them, tensor or array -> NumPy ``(N, 28, 28)``."""
    images = torch.as_tensor(images.detach().cpu() if torch.is_tensor(images) else images)
    return flatten_inputs(images, 784).numpy().reshape(-1, 28, 28)


def image_grid(images, ncols=10, pad=1):
    """Tile images into one array ``(rows * (28 + pad) - pad, ncols * (28 + pad) - pad)``, gaps left blank (0)."""
    return tile(_as_images(images).astype(np.float32), ncols, pad, fill=0)


def show_images(images, ncols=10, title=None, scale=0.6, ax=None):
    """Show images as a grid (black digits on white, as on paper)."""
    grid = image_grid(images, ncols)
    if ax is None:
        h, w = grid.shape
        fig, ax = plt.subplots(figsize=(scale * w / 29, scale * h / 29 + (0.3 if title else 0)))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def show_reconstructions(originals, reconstructions, n=10, scale=0.6):
    """Originals (top row) above their reconstructions (bottom row)."""
    originals, reconstructions = _as_images(originals)[:n], _as_images(reconstructions)[:n]
    fig, axes = plt.subplots(2, 1, figsize=(scale * len(originals), scale * 2 + 0.5))
    show_images(originals, ncols=n, title="original", ax=axes[0])
    show_images(reconstructions, ncols=n, title="reconstruction", ax=axes[1])
    fig.tight_layout()
    return fig


def latent_scatter(z, labels, title=None, ax=None, s=3, alpha=0.6):
    """2-D codes ``(N, 2)`` as dots coloured by digit label ``(N,)``."""
    z = z.detach().cpu().numpy() if torch.is_tensor(z) else np.asarray(z)
    labels = labels.cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if z.ndim != 2 or z.shape[1] != 2 or len(labels) != len(z):
        raise ValueError(f"expected codes (N, 2) and labels (N,), got {z.shape} and {labels.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=s, alpha=alpha)
    ax.figure.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


@torch.no_grad()
def decode_grid(model, z1_values, z2_values, ax=None, title=None, scale=0.45):
    """Decode every code ``(z1, z2)`` on a grid and tile the images (z2 grows upwards)."""
    z1 = torch.as_tensor(z1_values, dtype=torch.float32)
    z2 = torch.as_tensor(z2_values, dtype=torch.float32).flip(0)
    codes = torch.stack(torch.meshgrid(z2, z1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
    device = next(model.parameters()).device
    images = model.decode_images(codes.to(device)).cpu()
    if ax is None:
        _, ax = plt.subplots(figsize=(scale * len(z1) + 0.4, scale * len(z2) + 0.4))
    ax.imshow(image_grid(images, ncols=len(z1), pad=0), cmap="gray_r", vmin=0, vmax=1,
              extent=(float(z1[0]), float(z1[-1]), float(z2[-1]), float(z2[0])), aspect="auto")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def manifold_grid(model, n=15, ax=None, title=None):
    """The decoded 2-D latent plane, with grid points at the prior's quantiles 5 % ... 95 %.

    Codes are ``Phi^-1(p)`` (the normal inverse CDF), so each cell covers the same prior mass.
    """
    quantiles = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    return decode_grid(model, quantiles, quantiles, ax=ax, title=title)


def loss_curves(history, parts=("loss", "recon", "kl")):
    """One panel per loss term found in ``history`` (from :func:`vaelib.train.fit`), train and test.

    A history without a KL term (an autoencoder's) has one term only, its reconstruction loss: one panel.
    """
    has_kl = "train_kl" in history
    parts = [p for p in parts if f"train_{p}" in history and (has_kl or p == "loss")]
    fig, axes = plt.subplots(1, len(parts), figsize=(3.2 * len(parts), 2.6), squeeze=False)
    names = {"loss": "loss (negative ELBO)" if has_kl else "reconstruction loss", "recon": "reconstruction",
             "kl": "KL"}
    for ax, part in zip(axes[0], parts):
        for split, style in (("train", "-"), ("test", "--")):
            if f"{split}_{part}" in history:
                ax.plot(history["epoch"], history[f"{split}_{part}"], style, label=split)
        ax.set_title(names.get(part, part), fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("nats per image")
    fig.tight_layout()
    return fig
