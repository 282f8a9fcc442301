"""Pictures as plain arrays and PNG bytes: what the widgets show, without any widget.

Pure functions of arrays and tensors: pixel values -> uint8 images (dark ink on white paper),
images -> a tiled grid (shared with :func:`vaelib.plots.image_grid`), the map of a 2-D latent
plane drawn once and a ring marking one point on a copy of it, PNG bytes (encoded by Pillow,
which ships with matplotlib); then, through the :class:`vaelib.models.Model` protocol, a model's
codes and decoded digits as PNG bytes (what every explorer of :mod:`vaelib.widgets` draws).
"""

import io

import numpy as np
import torch
from PIL import Image

from .models import Model, flatten_inputs

# Colours of matplotlib's "tab10" (as in vaelib.plots.latent_scatter), one per digit 0-9.
TAB10 = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
                 dtype=np.uint8)


def png_bytes(pixels, scale=1):
    """Encode an image as a PNG file, in memory.

    Args:
        pixels: uint8 array ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB).
        scale: integer upscaling; each pixel becomes a ``scale x scale`` block (crisp, not blurred).

    Returns:
        bytes of a PNG image ``(H * scale, W * scale)``.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"expected uint8 pixels of shape (H, W) or (H, W, 3), got {pixels.dtype} {pixels.shape}")
    scale = check_scale(scale)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_shape(data):
    """``(height, width)`` of PNG bytes (or an ``Image.value``), read from the PNG's header."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected PNG bytes, got {type(data).__name__}")
    data = bytes(data[:24])
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not PNG bytes")
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def check_scale(scale):
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {scale}")
    return int(scale)


def to_pixels(images):
    """Pixel values in [0, 1] ``(N, 784)``, ``(N, 1, 28, 28)`` or ``(N, 28, 28)`` -> uint8 ``(N, 28, 28)``, dark ink on white paper."""
    images = torch.as_tensor(images.detach().cpu() if torch.is_tensor(images) else images)
    paper = 255 - (flatten_inputs(images.float(), 784).clamp(0, 1) * 255).round()
    return paper.to(torch.uint8).numpy().reshape(-1, 28, 28)


def tile(images, ncols, pad=2, fill=255):
    """Images ``(N, h, w)`` -> one grid ``(rows * (h + pad) - pad, ncols * (w + pad) - pad)`` of their dtype,
    ``ncols`` to a row, gaps and empty cells filled with ``fill`` (255: white paper for uint8 pixels)."""
    n, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill, dtype=images.dtype)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = image
    return grid


def _to_pixel(z, limit, size):
    """Codes ``(..., 2)`` in ``[-limit, limit]^2`` -> (row, column) pixel indices; z2 grows upwards."""
    z = np.asarray(z, dtype=np.float64)
    col = np.rint((z[..., 0] + limit) / (2 * limit) * (size - 1)).astype(int)
    row = np.rint((limit - z[..., 1]) / (2 * limit) * (size - 1)).astype(int)
    return row, col


def latent_map_background(codes, labels, limit=4.0, size=180):
    """Draw codes of the 2-D latent plane once, as an RGB array to mark points on later.

    Args:
        codes: ``(N, 2)`` codes (e.g. the test set's posterior means); those outside
            ``[-limit, limit]^2`` are left out.
        labels: ``(N,)`` digits 0-9, for the colours (matplotlib's tab10, as in ``latent_scatter``).
        limit, size: the square ``[-limit, limit]^2`` is drawn ``size x size`` pixels.

    Returns:
        uint8 array ``(size, size, 3)``: white, grey lines at whole values of z (darker at 0), a
        2 x 2 dot per code.
    """
    codes = codes.detach().cpu().numpy() if torch.is_tensor(codes) else np.asarray(codes)
    labels = labels.cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(labels) != len(codes):
        raise ValueError(f"expected codes (N, 2) and labels (N,), got {codes.shape} and {labels.shape}; "
                         "the map is of a 2-D latent plane")
    if limit <= 0 or size < 16:
        raise ValueError(f"need limit > 0 and size >= 16, got limit={limit}, size={size}")
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    for v in range(-int(limit), int(limit) + 1):
        row, col = _to_pixel([v, v], limit, size)
        shade = 190 if v == 0 else 232
        image[:, col] = shade
        image[row, :] = shade
    inside = np.all(np.abs(codes) <= limit, axis=1)
    row, col = _to_pixel(codes[inside], limit, size)
    colors = TAB10[labels[inside].astype(int) % 10]
    for dr in (0, 1):
        for dc in (0, 1):
            image[np.clip(row + dr, 0, size - 1), np.clip(col + dc, 0, size - 1)] = colors
    return image


def draw_marker(background, z, limit=4.0):
    """A copy of ``background`` ``(size, size, 3)`` with the point ``z = (z1, z2)`` marked by a black ring."""
    size = background.shape[0]
    image = background.copy()
    z = np.clip(np.asarray(z, dtype=np.float64), -limit, limit)
    row, col = _to_pixel(z, limit, size)
    top, left = max(row - 7, 0), max(col - 7, 0)  # only the pixels near z change
    patch = image[top:row + 8, left:col + 8]  # a view: drawing on it draws on the image
    rows, cols = np.ogrid[top:top + patch.shape[0], left:left + patch.shape[1]]
    distance = np.sqrt((rows - row) ** 2 + (cols - col) ** 2)
    patch[(distance >= 4) & (distance < 7)] = (255, 255, 255)  # a white halo, visible on any dot
    patch[(distance >= 4.5) & (distance < 6.5)] = (0, 0, 0)
    patch[distance < 1.5] = (0, 0, 0)
    return image


def render_map(background, z, limit=4.0):
    """PNG bytes of the latent map ``background`` with ``z`` ``(2,)`` marked (see :func:`draw_marker`)."""
    return png_bytes(draw_marker(background, z, limit))


# ---------------------------------------------------------------------------------------------
# A model's codes and pictures, with the checks every explorer makes
# ---------------------------------------------------------------------------------------------

def _check_model(model, what="model", conditional=False):
    """A vaelib model of the kind the explorer ``what`` is for: unconditional, or (``conditional``) a ConditionalVAE."""
    name = type(model).__name__
    if conditional and not (isinstance(model, Model) and model.conditional):
        raise ValueError(f"{what} needs a vaelib ConditionalVAE, whose decoder takes a label, "
                         f"got {name}; for an unconditional model use latent_sliders")
    if not isinstance(model, Model):
        raise ValueError(f"{what} must be a vaelib Autoencoder or VAE, got {name}")
    if model.conditional and not conditional:
        raise ValueError(f"{what} is for unconditional models, but a {name} is conditional (its decoder "
                         "needs a label): use conditional_explorer")


def _check_models(models, example):
    """A non-empty dict of unconditional models of 784-pixel images."""
    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict of name -> model, e.g. {example}")
    for name, model in models.items():
        _check_model(model, f"models[{name!r}]")
        if model.input_dim != 784:
            raise ValueError(f"models[{name!r}] takes {model.input_dim} inputs, not the 784 pixels of an MNIST image")


def _check_images(images):
    """-> float tensor ``(N, 784)``, N >= 1."""
    images = flatten_inputs(images, 784)
    if len(images) == 0:
        raise ValueError("expected at least one image, got none")
    return images


def _as_code(z, latent_dim, name="z"):
    """-> float tensor ``(latent_dim,)``."""
    z = torch.as_tensor(z, dtype=torch.float32).detach().cpu()
    if z.dim() == 2 and len(z) == 1:
        z = z[0]
    if tuple(z.shape) != (latent_dim,):
        raise ValueError(f"{name} must have shape ({latent_dim},) for a model with latent_dim={latent_dim}, "
                         f"got {tuple(z.shape)}")
    return z


@torch.no_grad()
def encode_mean(model, images):
    """Codes of images: ``(N, 784)`` -> ``(N, latent_dim)``: ``model.code``, the posterior mean ``mu``
    for a VAE, the (only) code for an autoencoder."""
    _check_model(model, "encode_mean")
    device = next(model.parameters()).device
    return model.code(_check_images(images).to(device)).cpu()


@torch.no_grad()
def decode_pixels(model, z, labels=None):
    """Codes ``(N, latent_dim)`` -> uint8 images ``(N, 28, 28)`` (the decoder's mean, ink dark)."""
    device = next(model.parameters()).device
    labels = None if labels is None else labels.to(device)
    return to_pixels(model.decode_images(torch.as_tensor(z, dtype=torch.float32).to(device), labels))


def render_digit(model, z, scale=5):
    """One code ``z`` ``(latent_dim,)`` -> PNG bytes of its decoded digit, ``(28 * scale, 28 * scale)``."""
    z = _as_code(z, model.latent_dim)
    return png_bytes(decode_pixels(model, z[None])[0], scale)


def render_digits(model, z, ncols=10, scale=2):
    """Codes ``(N, latent_dim)`` -> PNG bytes of their decoded digits tiled ``ncols`` to a row."""
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.dim() != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"expected codes of shape (N, {model.latent_dim}), got {tuple(z.shape)}")
    return png_bytes(tile(decode_pixels(model, z), ncols), scale)


@torch.no_grad()
def render_model(model, images, z, ncols=10, scale=2):
    """PNG bytes of what a model does: ``images``, their reconstructions, then the decodings of the codes ``z``, ``ncols`` to a row."""
    images = _check_images(images)
    pictures = torch.cat([images, model.reconstruct(images), model.decode_images(z)])
    return png_bytes(tile(to_pixels(pictures), ncols), scale)


def interpolate(z_start, z_end, t):
    """The point ``(1 - t) * z_start + t * z_end`` of the straight line between two codes.

    ``t`` may be a number (returns ``(latent_dim,)``) or a 1-D tensor of ``T`` values (returns ``(T, latent_dim)``).
    """
    t = torch.as_tensor(t, dtype=torch.float32)
    if t.dim() == 1:
        t = t[:, None]
    return (1 - t) * z_start + t * z_end


def _check_digits(digits, num_classes):
    """A label or labels (ints, or an integer tensor such as ``y_test[0]``) -> list of ints in 0..num_classes-1."""
    if torch.is_tensor(digits) and not digits.is_floating_point():
        digits = digits.tolist()
    digits = list(digits) if isinstance(digits, (list, tuple, range, np.ndarray)) else [digits]
    if not digits:
        raise ValueError("expected at least one digit")
    for d in digits:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d < num_classes:
            raise ValueError(f"digit {d!r} is not a label of this model: choose a whole number 0 to {num_classes - 1}")
    return [int(d) for d in digits]


@torch.no_grad()
def render_style(model, z, digits, scale=2, mark=None):
    """One style code written as several digits: PNG bytes of ``decode(z, y)`` for each ``y`` in ``digits``, in a row.

    Args:
        model: a vaelib ``ConditionalVAE``.
        z: the style code ``(latent_dim,)``, the same for every digit.
        digits: a label or a list of labels (0 to ``num_classes - 1``).
        scale: each digit is shown ``28 * scale`` pixels square.
        mark: one of ``digits`` to underline with a black bar (or None: no bar, no room for one).

    Returns:
        PNG bytes ``(28 * scale, (len(digits) * 30 - 2) * scale)``, or 4 * scale pixels taller with ``mark``.
    """
    _check_model(model, "render_style", conditional=True)
    num_classes = model.config["num_classes"]
    digits = _check_digits(digits, num_classes)
    z = _as_code(z, model.latent_dim)
    pixels = tile(decode_pixels(model, z[None].repeat(len(digits), 1), torch.tensor(digits)), len(digits))
    if mark is not None:
        if mark not in digits:
            raise ValueError(f"mark={mark!r} is not one of the digits shown, {digits}")
        column = digits.index(mark) * 30
        pixels = np.vstack([pixels, np.full((4, pixels.shape[1]), 255, dtype=np.uint8)])
        pixels[30:32, column:column + 28] = 0
    return png_bytes(pixels, check_scale(scale))


def digit_legend():
    """HTML: the digits 0-9 in the latent map's colours."""
    spans = [f'<span style="color:rgb{tuple(int(c) for c in TAB10[d])}">&#9632;&nbsp;{d}</span>' for d in range(10)]
    return "<small>" + " ".join(spans) + "</small>"


def describe_posterior(mu, sigma, max_dims=8):
    """One line of text per vector: ``mu = (..)`` and ``sigma = (..)``, 2 decimals, the first ``max_dims`` dims."""
    def fmt(v):
        shown = ", ".join(f"{x:.2f}" for x in v[:max_dims].tolist())
        return f"({shown}{', ...' if len(v) > max_dims else ''})"
    return f"mu    = {fmt(mu)}\nsigma = {fmt(sigma)}"
