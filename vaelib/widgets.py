"""Live widgets for the latent explorer (notebooks 06 and 09): drag a slider, see a digit.

The fast path, for every slider move: decode a code ``z`` -> pixels as a uint8 array -> PNG
bytes -> ``ipywidgets.Image.value``. No matplotlib figure is drawn per move; the map of the
latent plane is drawn once to an array, and each move only marks the current point on a copy.

Five widgets, each a function that returns the widget box (display it as a cell's last line):

* :func:`latent_sliders` -- one slider per latent dimension (or the leading few), the decoded
  digit, and for a 2-D model a map of the latent plane with the current point marked;
* :func:`interpolation` -- walk ``t`` from 0 to 1 on the straight line between two test
  digits' codes, for several models side by side;
* :func:`encode_and_perturb` -- a test digit's posterior ``mu`` and ``sigma``, and a button that
  resamples ``z ~ q(z | x)`` and decodes the samples;
* :func:`prior_samples` -- a grid of samples from the prior, with a temperature slider.
* :func:`conditional_explorer` -- for a ``ConditionalVAE`` (notebook 09): pick a digit, move the
  style sliders, and see the same style written as every digit.

Only core widgets are used (sliders, buttons, images, HTML, boxes) with APIs common to
ipywidgets 7.7 (Colab) and 8.x (JupyterLab 4). The pieces they are built from (``png_bytes``,
``render_digit``, ``render_map``, ...) are plain functions, tested directly.
"""

import html
import struct
import zlib

import ipywidgets
import numpy as np
import torch

# Colours of matplotlib's "tab10" (as in vaelib.plots.latent_scatter), one per digit 0-9.
TAB10 = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
                 dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Pixels and PNG bytes
# ---------------------------------------------------------------------------------------------

def png_bytes(pixels, scale=1):
    """Encode an image as a PNG file, in memory.

    Args:
        pixels: uint8 array ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB).
        scale: integer upscaling; each pixel becomes a ``scale x scale`` block (crisp, not blurred).

    Returns:
        bytes of a PNG image ``(H * scale, W * scale)``.

    A PNG is a signature and three chunks: IHDR (size and pixel format), IDAT (the rows, each
    led by a filter byte, 0 = none, zlib-compressed) and IEND. Each chunk is
    ``length, type, data, CRC-32 of type and data``.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"expected uint8 pixels of shape (H, W) or (H, W, 3), got {pixels.dtype} {pixels.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {scale}")
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # column 0: filter byte 0
    rows[:, 1:] = pixels.reshape(height, -1)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    color_type = 0 if pixels.ndim == 2 else 2  # 0 = grey, 2 = RGB; 8 bits per sample
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))


def png_shape(data):
    """``(height, width)`` of PNG bytes (or an ``Image.value``), read from the IHDR chunk (for checks and tests)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"expected PNG bytes, got {type(data).__name__}")
    data = bytes(data[:24])
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not PNG bytes")
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def to_pixels(images):
    """Pixel values in [0, 1] ``(N, 784)`` -> uint8 ``(N, 28, 28)``, dark ink on white paper."""
    images = images.detach().cpu() if torch.is_tensor(images) else torch.as_tensor(images)
    if images.dim() == 0 or images.numel() % 784:
        raise ValueError(f"expected images of shape (N, 784) or (N, 1, 28, 28), got {tuple(images.shape)}")
    paper = 255 - (images.float().clamp(0, 1) * 255).round()
    return paper.to(torch.uint8).numpy().reshape(-1, 28, 28)


def tile(pixels, ncols, pad=2):
    """uint8 images ``(N, 28, 28)`` -> one uint8 grid ``(rows * (28 + pad) - pad, ncols * (28 + pad) - pad)``, white gaps."""
    n = len(pixels)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    grid = np.full((nrows * (28 + pad) - pad, ncols * (28 + pad) - pad), 255, dtype=np.uint8)
    for i, image in enumerate(pixels):
        r, c = divmod(i, ncols)
        grid[r * (28 + pad): r * (28 + pad) + 28, c * (28 + pad): c * (28 + pad) + 28] = image
    return grid


# ---------------------------------------------------------------------------------------------
# Models, codes and checks
# ---------------------------------------------------------------------------------------------

def _check_model(model, what="model"):
    if not (hasattr(model, "decode_images") and hasattr(model, "latent_dim") and hasattr(model, "encode")):
        raise ValueError(f"{what} must be a vaelib Autoencoder or VAE, got {type(model).__name__}")


def _check_images(images):
    """-> float tensor ``(N, 784)``."""
    if not torch.is_tensor(images) or not images.is_floating_point() or images.dim() not in (2, 4) \
            or len(images) == 0 or images[0].numel() != 784:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"expected float images of shape (N, 784) or (N, 1, 28, 28), got {shape}")
    return images.reshape(len(images), 784)


def _check_labels(labels, n):
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {n} images but {len(labels)} labels; pass the labels of these images")


def _check_index(index, n, name="index"):
    if int(index) != index or not 0 <= index < n:
        raise ValueError(f"{name} {index} is outside the test set: choose 0 to {n - 1}")
    return int(index)


def _check_scale(scale):
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {scale}")
    return int(scale)


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
    """Codes of images: ``(N, 784)`` -> ``(N, latent_dim)``.

    For a VAE the posterior mean ``mu`` of q(z | x); for an autoencoder its (only) code.
    """
    _check_model(model)
    images = _check_images(images)
    device = next(model.parameters()).device
    code = model.encode(images.to(device))
    return (code[0] if isinstance(code, tuple) else code).cpu()


@torch.no_grad()
def decode_pixels(model, z):
    """Codes ``(N, latent_dim)`` -> uint8 images ``(N, 28, 28)`` (the decoder's mean, ink dark)."""
    device = next(model.parameters()).device
    return to_pixels(model.decode_images(torch.as_tensor(z, dtype=torch.float32).to(device)))


def render_digit(model, z, scale=5):
    """One code ``z`` ``(latent_dim,)`` -> PNG bytes of its decoded digit, ``(28 * scale, 28 * scale)``."""
    z = _as_code(z, model.latent_dim)
    return png_bytes(decode_pixels(model, z[None])[0], _check_scale(scale))


def render_digits(model, z, ncols=10, scale=2):
    """Codes ``(N, latent_dim)`` -> PNG bytes of their decoded digits tiled ``ncols`` to a row."""
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.dim() != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"expected codes of shape (N, {model.latent_dim}), got {tuple(z.shape)}")
    return png_bytes(tile(decode_pixels(model, z), ncols), _check_scale(scale))


def interpolate(z_start, z_end, t):
    """The point ``(1 - t) * z_start + t * z_end`` of the straight line between two codes.

    ``t`` may be a number (returns ``(latent_dim,)``) or a 1-D tensor of ``T`` values (returns ``(T, latent_dim)``).
    """
    t = torch.as_tensor(t, dtype=torch.float32)
    if t.dim() == 1:
        t = t[:, None]
    return (1 - t) * z_start + t * z_end


# ---------------------------------------------------------------------------------------------
# The map of the 2-D latent plane
# ---------------------------------------------------------------------------------------------

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
    colors = TAB10[labels[inside] % 10]
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


def digit_legend():
    """HTML: the digits 0-9 in the map's colours."""
    spans = [f'<span style="color:rgb{tuple(int(c) for c in TAB10[d])}">&#9632;&nbsp;{d}</span>' for d in range(10)]
    return "<small>" + " ".join(spans) + "</small>"


# ---------------------------------------------------------------------------------------------
# The widgets
# ---------------------------------------------------------------------------------------------

class Explorer(ipywidgets.VBox):
    """A ``VBox`` that names its parts (``explorer.sliders``, ``explorer.digit``, ...).

    It prints as a one-line summary rather than the repr of every child (which would spell out
    the PNG bytes), so a notebook's stored text output stays short and the same on every run.
    """

    def __init__(self, children, summary, css_class, **parts):
        super().__init__(children)
        self.add_class(css_class)
        self.summary = summary
        for name, part in parts.items():
            setattr(self, name, part)

    def __repr__(self):
        return f"<{self.summary}>"


def _slider(description, value, low, high, step):
    return ipywidgets.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                                  readout_format=".2f", continuous_update=True,
                                  layout=ipywidgets.Layout(width="320px"))


def _code_sliders(base, n_sliders, limit, step):
    """Sliders ``z1..zn`` for the first ``n_sliders`` coordinates of ``base`` ``(latent_dim,)``, and
    ``code()``: the current code ``(latent_dim,)``, ``base`` with those coordinates from the sliders."""
    sliders = [_slider(f"z{i + 1}", float(base[i].clamp(-limit, limit)), -limit, limit, step)
               for i in range(n_sliders)]

    def code():
        z = base.clone()
        z[:n_sliders] = torch.tensor([s.value for s in sliders])
        return z

    return sliders, code


def _index_slider(description, value, n):
    return ipywidgets.IntSlider(value=value, min=0, max=n - 1, description=description,
                                continuous_update=True, layout=ipywidgets.Layout(width="320px"))


def _image(png, css_class="vaelib-image"):
    """An Image widget shown at the PNG's own size (a box would otherwise stretch it, blurred)."""
    height, width = png_shape(png)
    image = ipywidgets.Image(value=png, format="png",
                             layout=ipywidgets.Layout(width=f"{width}px", height=f"{height}px", flex="none"))
    image.add_class(css_class)
    return image


def _guard(update, status):
    """Wrap a callback: an error shows as a message in ``status`` (an HTML widget), not a dead widget."""
    def guarded(change=None):
        try:
            update()
            status.value = ""
        except Exception as error:  # noqa: BLE001 -- shown to the user, the widget stays alive
            status.value = (f'<span style="color:#b00020">could not update: '
                            f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>")
    return guarded


def latent_sliders(model, n_sliders=None, base=None, codes=None, labels=None, limit=4.0, step=0.05, scale=5):
    """Sliders over the latent space and the digit they decode to, updated as you drag.

    Args:
        model: a vaelib ``VAE`` or ``Autoencoder``.
        n_sliders: how many leading dimensions get a slider (default: all, at most 6).
        base: ``(latent_dim,)`` code that the sliders start from and that the dimensions without a
            slider keep (default: zeros, the prior's mean); e.g. a test digit's ``mu``.
        codes, labels: ``(N, 2)`` codes and ``(N,)`` digits to draw a map of the latent plane
            next to the digit, with the current point marked. Only for a model with latent_dim=2.
        limit, step: each slider runs from ``-limit`` to ``limit`` in steps of ``step``.
        scale: the digit is shown ``28 * scale`` pixels square.

    Returns:
        an :class:`Explorer` box with ``.sliders`` (list of FloatSliders), ``.digit`` (Image),
        ``.map`` (Image or None), ``.status`` (HTML; error messages) and ``.code()`` -> ``(latent_dim,)``.

    Raises:
        ValueError: for a map with a model whose latent_dim is not 2, or codes of the wrong
            shape, a ``base`` of the wrong size, or ``n_sliders`` outside 1..latent_dim.
    """
    _check_model(model)
    latent_dim = model.latent_dim
    n_sliders = min(latent_dim, 6) if n_sliders is None else n_sliders
    if int(n_sliders) != n_sliders or not 1 <= n_sliders <= latent_dim:
        raise ValueError(f"n_sliders must be between 1 and latent_dim={latent_dim}, got {n_sliders}")
    base = torch.zeros(latent_dim) if base is None else _as_code(base, latent_dim, "base")
    if codes is not None and latent_dim != 2:
        raise ValueError(f"the latent map shows a 2-D latent plane, but this model has latent_dim={latent_dim}; "
                         "use a model with latent_dim=2, or leave out codes= and labels= for sliders only")
    if codes is not None and labels is None:
        raise ValueError("the latent map colours the codes by digit: pass labels= (N,) with codes=")
    background = None if codes is None else latent_map_background(codes, labels, limit)

    sliders, code = _code_sliders(base, n_sliders, limit, step)
    digit = _image(render_digit(model, code(), scale), "vaelib-digit")
    map_image = None if background is None else _image(render_map(background, code(), limit), "vaelib-map")
    status = ipywidgets.HTML("")

    def update():
        z = code()
        digit.value = render_digit(model, z, scale)
        if map_image is not None:
            map_image.value = render_map(background, z, limit)

    callback = _guard(update, status)
    for s in sliders:
        s.observe(callback, names="value")

    held = "" if n_sliders == latent_dim else f"; z{n_sliders + 1}..z{latent_dim} held at the start code"
    note = ipywidgets.HTML(f"<small>decoded digit{held}</small>")
    pictures = [ipywidgets.VBox([digit, note])]
    if map_image is not None:
        caption = "<small>test codes by digit; z1 across, z2 up, the ring is z</small>"
        pictures.append(ipywidgets.VBox([map_image, ipywidgets.HTML(digit_legend() + "<br>" + caption)]))
    children = [ipywidgets.HBox(pictures), *sliders, status]
    summary = (f"latent_sliders: {n_sliders} slider(s) over {latent_dim}-D codes, "
               f"a {28 * scale}x{28 * scale} digit" + (", a map of the latent plane" if map_image else ""))
    return Explorer(children, summary, "vaelib-latent-sliders", sliders=sliders, digit=digit, map=map_image,
                    status=status, code=code)


def interpolation(models, images, labels=None, start=0, end=1, steps=9, scale=4):
    """Walk the straight line between two test digits' codes, for several models side by side.

    Args:
        models: dict of name -> model, e.g. ``{"autoencoder": ae, "VAE": vae}``; each encodes the
            two digits (a VAE by its mean ``mu``) and decodes ``(1 - t) * z_start + t * z_end``.
        images: ``(N, 784)`` test images to pick from; ``labels``: optional ``(N,)`` digits.
        start, end: indices of the two digits; steps: how many points the strip shows.
        scale: the digit at ``t`` is shown ``28 * scale`` pixels square.

    Returns:
        an :class:`Explorer` box with ``.start``, ``.end`` (IntSliders), ``.t`` (FloatSlider in [0, 1]),
        ``.digits`` (dict name -> Image at ``t``), ``.strips`` (dict name -> Image of the path), ``.status``.

    Raises:
        ValueError: if ``models`` is empty or not models of 784-pixel images, or an index is outside the images.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict of name -> model, e.g. {'autoencoder': ae, 'VAE': vae}")
    for name, model in models.items():
        _check_model(model, f"models[{name!r}]")
        config = getattr(model, "config", {})
        features = config.get("input_dim", config.get("sizes", [784])[0])
        if features != 784:
            raise ValueError(f"models[{name!r}] takes {features} inputs, not the 784 pixels of an MNIST image")
    images = _check_images(images)
    n = len(images)
    _check_labels(labels, n)
    start, end = _check_index(start, n, "start"), _check_index(end, n, "end")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    scale = _check_scale(scale)

    start_slider = _index_slider("from", start, n)
    end_slider = _index_slider("to", end, n)
    t_slider = _slider("t", 0.0, 0.0, 1.0, 0.02)
    t_slider.add_class("vaelib-t")
    ends = {}  # name -> (z_start, z_end), recomputed when a digit is picked

    def endpoints():
        pair = images[[start_slider.value, end_slider.value]]
        for name, model in models.items():
            ends[name] = tuple(encode_mean(model, pair))

    def caption():
        if labels is None:
            return f"<small>from #{start_slider.value} to #{end_slider.value}</small>"
        return (f"<small>from #{start_slider.value} (a {int(labels[start_slider.value])}) "
                f"to #{end_slider.value} (a {int(labels[end_slider.value])})</small>")

    endpoints()
    originals = _image(png_bytes(tile(to_pixels(images[[start, end]]), 2), 2), "vaelib-originals")
    title = ipywidgets.HTML(caption())
    digits = {name: _image(render_digit(m, interpolate(*ends[name], 0.0), scale), "vaelib-digit")
              for name, m in models.items()}
    path = torch.linspace(0, 1, steps)
    strips = {name: _image(render_digits(m, interpolate(*ends[name], path), ncols=steps, scale=1), "vaelib-strip")
              for name, m in models.items()}
    status = ipywidgets.HTML("")

    def update_t():
        for name, model in models.items():
            digits[name].value = render_digit(model, interpolate(*ends[name], t_slider.value), scale)

    def update_pair():
        endpoints()
        originals.value = png_bytes(tile(to_pixels(images[[start_slider.value, end_slider.value]]), 2), 2)
        title.value = caption()
        for name, model in models.items():
            strips[name].value = render_digits(model, interpolate(*ends[name], path), ncols=steps, scale=1)
        update_t()

    t_slider.observe(_guard(update_t, status), names="value")
    for s in (start_slider, end_slider):
        s.observe(_guard(update_pair, status), names="value")

    columns = [ipywidgets.VBox([ipywidgets.HTML(f"<b>{html.escape(str(name))}</b>"), digits[name], strips[name]],
                               layout=ipywidgets.Layout(margin="0 24px 0 0"))
               for name in models]
    children = [ipywidgets.HBox([originals, title]), start_slider, end_slider,
                ipywidgets.HBox(columns), t_slider, status]
    summary = f"interpolation: {', '.join(map(str, models))} from test digit #{start} to #{end}, t in [0, 1]"
    return Explorer(children, summary, "vaelib-interpolation", start=start_slider, end=end_slider, t=t_slider,
                    digits=digits, strips=strips, status=status)


def describe_posterior(mu, sigma, max_dims=8):
    """One line of text per vector: ``mu = (..)`` and ``sigma = (..)``, 2 decimals, the first ``max_dims`` dims."""
    def fmt(v):
        shown = ", ".join(f"{x:.2f}" for x in v[:max_dims].tolist())
        return f"({shown}{', ...' if len(v) > max_dims else ''})"
    return f"mu    = {fmt(mu)}\nsigma = {fmt(sigma)}"


def encode_and_perturb(vae, images, labels=None, index=0, n_samples=8, scale=3, seed=0):
    """A test digit, its posterior q(z | x) = N(mu, sigma^2), and decoded samples ``z ~ q(z | x)``.

    Args:
        vae: a vaelib ``VAE`` (its encoder returns ``mu`` and ``sigma``).
        images: ``(N, 784)`` test images; ``labels``: optional ``(N,)`` digits.
        index: the digit to start with; n_samples: how many samples a row shows.
        seed: seeds the widget's own random generator (the notebook's stays untouched).

    Returns:
        an :class:`Explorer` box with ``.index`` (IntSlider), ``.resample`` (Button), ``.text`` (HTML
        with mu and sigma), ``.original``, ``.samples`` (Images: the digit, and its mean
        reconstruction followed by ``n_samples`` decoded samples), ``.status``.

    Raises:
        ValueError: for a model without a Gaussian encoder, or an index outside the images.
    """
    _check_model(vae, "vae")
    if not hasattr(vae, "reparameterize"):
        raise ValueError(f"encode_and_perturb needs a VAE, whose encoder returns mu and sigma; "
                         f"got a {type(vae).__name__}, whose code has no spread")
    images = _check_images(images)
    _check_labels(labels, len(images))
    index = _check_index(index, len(images))
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    scale = _check_scale(scale)
    generator = torch.Generator().manual_seed(seed)

    index_slider = _index_slider("digit #", index, len(images))
    resample = ipywidgets.Button(description="resample z ~ q(z|x)", layout=ipywidgets.Layout(width="180px"))
    text = ipywidgets.HTML()
    status = ipywidgets.HTML("")

    @torch.no_grad()
    def pictures():
        """-> PNG bytes of the digit, and of its decoding from mu followed by decoded samples of q(z | x)."""
        x = images[index_slider.value][None]
        mu, sigma = vae.encode(x)
        eps = torch.randn(n_samples, vae.latent_dim, generator=generator)
        z = torch.cat([mu, mu + sigma * eps])  # the mean first, then the samples
        label = "" if labels is None else f" (a {int(labels[index_slider.value])})"
        text.value = (f"<b>test digit #{index_slider.value}{label}</b>"
                      f"<pre style='margin:0'>{describe_posterior(mu[0], sigma[0])}</pre>"
                      f"<small>below: decoded from mu, then {n_samples} samples z = mu + sigma * eps</small>")
        return png_bytes(to_pixels(x)[0], scale), render_digits(vae, z, ncols=n_samples + 1, scale=scale)

    original, samples = (_image(png, css) for png, css in zip(pictures(), ("vaelib-original", "vaelib-samples")))

    def draw():
        original.value, samples.value = pictures()

    callback = _guard(draw, status)
    index_slider.observe(callback, names="value")
    resample.on_click(lambda button: callback())

    children = [index_slider, ipywidgets.HBox([original, text]), samples, resample, status]
    summary = f"encode_and_perturb: test digit #{index}, its mean reconstruction and {n_samples} samples of q(z|x)"
    return Explorer(children, summary, "vaelib-encode-and-perturb", index=index_slider, resample=resample,
                    text=text, original=original, samples=samples, status=status)


def prior_samples(model, n=32, ncols=8, temperature=1.0, scale=2, seed=0):
    """A grid of samples from the prior: decode ``z = temperature * eps``, ``eps ~ N(0, I)``.

    The button draws new ``eps``; the temperature slider rescales the same ``eps``, so you watch
    the same samples move towards the prior's mean (low temperature) or away from it.

    Returns:
        an :class:`Explorer` box with ``.new`` (Button), ``.temperature`` (FloatSlider, 0 to 2),
        ``.grid`` (Image) and ``.status``.
    """
    _check_model(model)
    if n < 1 or ncols < 1:
        raise ValueError(f"need n >= 1 and ncols >= 1, got n={n}, ncols={ncols}")
    if not 0 <= temperature <= 2:
        raise ValueError(f"temperature must be between 0 and 2, got {temperature}")
    scale = _check_scale(scale)
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, model.latent_dim, generator=generator)

    new = ipywidgets.Button(description="new samples", layout=ipywidgets.Layout(width="140px"))
    temperature_slider = _slider("temperature", float(temperature), 0.0, 2.0, 0.05)
    temperature_slider.style.description_width = "initial"  # the whole word, not "temperat..."
    grid = _image(render_digits(model, temperature * eps, ncols, scale), "vaelib-grid")
    status = ipywidgets.HTML("")

    def redraw():
        grid.value = render_digits(model, temperature_slider.value * eps, ncols, scale)

    def draw_new():
        eps.copy_(torch.randn(n, model.latent_dim, generator=generator))
        redraw()

    temperature_slider.observe(_guard(redraw, status), names="value")
    guarded_new = _guard(draw_new, status)
    new.on_click(lambda button: guarded_new())
    children = [ipywidgets.HBox([new, temperature_slider]), grid, status]
    summary = f"prior_samples: {n} samples of a {model.latent_dim}-D prior, temperature {temperature:g}"
    return Explorer(children, summary, "vaelib-prior-samples", new=new, temperature=temperature_slider,
                    grid=grid, status=status)


# ---------------------------------------------------------------------------------------------
# The conditional VAE (notebook 09): one style, every digit
# ---------------------------------------------------------------------------------------------

def _check_conditional(model, what="conditional_explorer"):
    if not (getattr(model, "conditional", False) and hasattr(model, "decode_images")
            and hasattr(model, "latent_dim")):
        raise ValueError(f"{what} needs a vaelib ConditionalVAE, whose decoder takes a label, "
                         f"got {type(model).__name__}; for an unconditional model use latent_sliders")
    return model.config["num_classes"]


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
    num_classes = _check_conditional(model, "render_style")
    digits = _check_digits(digits, num_classes)
    z = _as_code(z, model.latent_dim)
    device = next(model.parameters()).device
    codes = z[None].repeat(len(digits), 1).to(device)
    pixels = tile(to_pixels(model.decode_images(codes, torch.tensor(digits, device=device))), len(digits))
    if mark is not None:
        if mark not in digits:
            raise ValueError(f"mark={mark!r} is not one of the digits shown, {digits}")
        column = digits.index(mark) * 30
        pixels = np.vstack([pixels, np.full((4, pixels.shape[1]), 255, dtype=np.uint8)])
        pixels[30:32, column:column + 28] = 0
    return png_bytes(pixels, _check_scale(scale))


def conditional_explorer(model, digit=0, z=None, limit=3.0, step=0.05, scale=5, row_scale=2):
    """Pick a digit and move the style sliders: the conditional VAE writes that style as that digit.

    Below the big digit, the same style code ``z`` is written as every digit 0-9 (the picked one
    underlined), so you see what ``z`` means independently of the label.

    Args:
        model: a vaelib ``ConditionalVAE`` (e.g. with ``latent_dim=2``).
        digit: the label to start with (0 to ``num_classes - 1``).
        z: the style code ``(latent_dim,)`` to start from (default: zeros, the prior's mean), e.g. a
            real digit's ``mu``; a model with more than 6 latent dimensions gets sliders for the
            first 6 and keeps the rest at ``z``.
        limit, step: each slider runs from ``-limit`` to ``limit`` in steps of ``step``.
        scale, row_scale: the digit is shown ``28 * scale`` pixels square, each digit of the row ``28 * row_scale``.

    Returns:
        an :class:`Explorer` box with ``.picker`` (ToggleButtons, value an int label), ``.sliders``
        (list of FloatSliders), ``.digit`` (Image), ``.row`` (Image of all the digits),
        ``.status`` (HTML; error messages) and ``.code()`` -> ``(latent_dim,)``.

    Raises:
        ValueError: for a model that is not conditional, a digit outside 0..num_classes-1, or a
            ``z`` of the wrong size.
    """
    num_classes = _check_conditional(model)
    digit, = _check_digits(digit, num_classes)
    latent_dim = model.latent_dim
    base = torch.zeros(latent_dim) if z is None else _as_code(z, latent_dim)
    scale, row_scale = _check_scale(scale), _check_scale(row_scale)
    everything = list(range(num_classes))

    picker = ipywidgets.ToggleButtons(options=everything, value=digit, description="digit")
    picker.style.button_width = "28px"
    n_sliders = min(latent_dim, 6)
    sliders, code = _code_sliders(base, n_sliders, limit, step)
    image = _image(render_style(model, code(), [digit], scale), "vaelib-digit")
    row = _image(render_style(model, code(), everything, row_scale, mark=digit), "vaelib-row")
    status = ipywidgets.HTML("")

    def draw():  # a new digit moves the row's underline, a new style changes every digit
        image.value = render_style(model, code(), [picker.value], scale)
        row.value = render_style(model, code(), everything, row_scale, mark=picker.value)

    redraw = _guard(draw, status)
    for control in [picker, *sliders]:
        control.observe(redraw, names="value")

    held = "" if n_sliders == latent_dim else f"; z{n_sliders + 1}..z{latent_dim} held at the start code"
    caption = ipywidgets.HTML(f"<small>decode(z, digit): the picked digit in the style z{held}</small>")
    row_caption = ipywidgets.HTML(f"<small>the same z written as every digit 0-{num_classes - 1}</small>")
    children = [picker, ipywidgets.HBox([ipywidgets.VBox([image, caption]), ipywidgets.VBox(sliders)]),
                row, row_caption, status]
    summary = (f"conditional_explorer: digit {digit}, {n_sliders} style slider(s) over {latent_dim}-D codes, "
               f"a {28 * scale}x{28 * scale} digit and the same style as all {num_classes} digits")
    return Explorer(children, summary, "vaelib-conditional-explorer", picker=picker, sliders=sliders,
                    digit=image, row=row, status=status, code=code)
