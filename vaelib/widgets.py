"""The live explorers of notebooks 06, 07 and 09: drag a slider, see a digit.

Each move runs: decode a code ``z`` -> uint8 pixels -> PNG bytes -> ``ipywidgets.Image.value``,
with no matplotlib figure drawn; the pictures come from :mod:`vaelib.render`. Each explorer is a
function that returns its box (display it as a cell's last line): :func:`latent_sliders`,
:func:`interpolation`, :func:`encode_and_perturb`, :func:`prior_samples`, :func:`model_slider`
(07's beta slider) and, for a ``ConditionalVAE``, :func:`conditional_explorer`. Models are used
through :class:`vaelib.models.Model` only; an explorer refuses a model of the other kind
(conditional or not) and names the one to use. Only core widgets are used, with APIs common to
ipywidgets 7.7 (Colab) and 8.x.
"""

import html

import ipywidgets
import torch

# The pictures; the notebooks also call these as widgets.render_digit, widgets.png_bytes, ...
from .render import (_as_code, _check_digits, _check_images, _check_model, _check_models, decode_pixels,  # noqa: F401
                     describe_posterior, digit_legend, encode_mean, interpolate, latent_map_background, png_bytes,
                     png_shape, render_digit, render_digits, render_map, render_model, render_style, tile, to_pixels)


# ---------------------------------------------------------------------------------------------
# The parts of every explorer
# ---------------------------------------------------------------------------------------------

def _check_labels(labels, n):
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {n} images but {len(labels)} labels; pass the labels of these images")


def _check_index(index, n, name="index"):
    if int(index) != index or not 0 <= index < n:
        raise ValueError(f"{name} {index} is outside the test set: choose 0 to {n - 1}")
    return int(index)


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
    """Sliders ``z1..zn`` for the first ``n_sliders`` coordinates of ``base`` ``(latent_dim,)``;
    ``code()``: the current code, ``base`` with those coordinates from the sliders; and a caption's end."""
    sliders = [_slider(f"z{i + 1}", float(base[i].clamp(-limit, limit)), -limit, limit, step)
               for i in range(n_sliders)]

    def code():
        z = base.clone()
        z[:n_sliders] = torch.tensor([s.value for s in sliders])
        return z

    held = "" if n_sliders == len(base) else f"; z{n_sliders + 1}..z{len(base)} held at the start code"
    return sliders, code, held


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


# ---------------------------------------------------------------------------------------------
# The explorers of unconditional models
# ---------------------------------------------------------------------------------------------

def latent_sliders(model, n_sliders=None, base=None, codes=None, labels=None, limit=4.0, step=0.05, scale=5):
    """Sliders over the latent space of a ``VAE`` or ``Autoencoder``, and the digit they decode to.

    ``n_sliders`` leading dimensions get a slider (default: all, at most 6), starting from ``base``
    ``(latent_dim,)`` (default: zeros), which the other dimensions keep. With ``codes`` ``(N, 2)`` and
    ``labels`` ``(N,)`` (a 2-D model only), a map of the latent plane marks the current point. Each
    slider runs from ``-limit`` to ``limit`` by ``step``; the digit is ``28 * scale`` pixels square.

    Returns an :class:`Explorer` with ``.sliders``, ``.digit`` (Image), ``.map`` (Image or None),
    ``.status`` (HTML: error messages) and ``.code()`` -> ``(latent_dim,)``.
    """
    _check_model(model, "latent_sliders")
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

    sliders, code, held = _code_sliders(base, n_sliders, limit, step)
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

    ``models``: dict of name -> model, e.g. ``{"autoencoder": ae, "VAE": vae}``; each encodes digits
    ``start`` and ``end`` of ``images`` ``(N, 784)`` (``labels``: optional ``(N,)``) with ``model.code``
    and decodes ``(1 - t) * z_start + t * z_end``: at ``t`` (``28 * scale`` pixels), and in a strip of ``steps``.

    Returns an :class:`Explorer` with ``.start``, ``.end`` (IntSliders), ``.t`` (FloatSlider in [0, 1]),
    ``.digits``, ``.strips`` (dicts name -> Image) and ``.status``.
    """
    _check_models(models, "{'autoencoder': ae, 'VAE': vae}")
    images = _check_images(images)
    n = len(images)
    _check_labels(labels, n)
    start, end = _check_index(start, n, "start"), _check_index(end, n, "end")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")

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


def encode_and_perturb(vae, images, labels=None, index=0, n_samples=8, scale=3, seed=0):
    """A test digit of ``images`` ``(N, 784)``, its posterior q(z | x) = N(mu, sigma^2) under a ``VAE``, and
    ``n_samples`` decoded samples ``z ~ q(z | x)``, drawn by the widget's own generator (seeded by ``seed``).

    Returns an :class:`Explorer` with ``.index`` (IntSlider), ``.resample`` (Button), ``.text`` (HTML:
    mu and sigma), ``.original``, ``.samples`` (Images: the digit; decoded mu, then the samples), ``.status``.
    """
    _check_model(vae, "encode_and_perturb")
    if not vae.variational:
        raise ValueError(f"encode_and_perturb needs a VAE, whose encoder returns mu and sigma; "
                         f"got a {type(vae).__name__}, whose code has no spread")
    images = _check_images(images)
    _check_labels(labels, len(images))
    index = _check_index(index, len(images))
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
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
    Returns an :class:`Explorer` with ``.new`` (Button), ``.temperature`` (0 to 2), ``.grid`` and ``.status``.
    """
    _check_model(model, "prior_samples")
    if n < 1 or ncols < 1:
        raise ValueError(f"need n >= 1 and ncols >= 1, got n={n}, ncols={ncols}")
    if not 0 <= temperature <= 2:
        raise ValueError(f"temperature must be between 0 and 2, got {temperature}")
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


def model_slider(models, images, z, captions=None, description="model", value=None, ncols=10, scale=2):
    """One slider over several trained models (notebook 07: one per beta), showing what the picked one does.

    ``models``: dict of slider value -> model, e.g. ``{0.5: vae_a, 1: vae_b}``, in slider order. The picture
    is :func:`render_model`: ``images`` ``(N, 784)``, their reconstructions, and the codes ``z`` decoded (the
    same for every model); ``captions``: optional dict of slider value -> HTML shown above it.

    Returns an :class:`Explorer` with ``.slider`` (SelectionSlider), ``.text``, ``.image`` and ``.status``.
    """
    _check_models(models, "{0.5: vae_a, 1: vae_b}")
    value = next(iter(models)) if value is None else value
    if value not in models:
        raise ValueError(f"value {value!r} is not one of the models' keys {list(models)}")
    captions = captions or {}
    slider = ipywidgets.SelectionSlider(options=list(models), value=value, description=description,
                                        continuous_update=True)
    text = ipywidgets.HTML(captions.get(value, ""))
    image = _image(render_model(models[value], images, z, ncols, scale), "vaelib-models")
    status = ipywidgets.HTML("")

    def draw():
        text.value, image.value = captions.get(slider.value, ""), render_model(models[slider.value], images, z, ncols, scale)

    slider.observe(_guard(draw, status), names="value")
    summary = f"model_slider: {description} over {len(models)} models {list(models)}, images, reconstructions and decoded codes"
    return Explorer([slider, text, image, status], summary, "vaelib-model-slider", slider=slider, text=text,
                    image=image, status=status)


# ---------------------------------------------------------------------------------------------
# The conditional VAE (notebook 09): one style, every digit
# ---------------------------------------------------------------------------------------------

def conditional_explorer(model, digit=0, z=None, limit=3.0, step=0.05, scale=5, row_scale=2):
    """Pick a digit and move the style sliders: the conditional VAE writes that style as that digit.

    Below the big digit (``28 * scale`` pixels), the same style code is written as every digit (the
    picked one underlined), so you see what ``z`` means whatever the label. The sliders (the first 6
    dimensions at most, from ``-limit`` to ``limit`` by ``step``) start at ``z`` (default: zeros).

    Returns an :class:`Explorer` with ``.picker`` (ToggleButtons), ``.sliders``, ``.digit``, ``.row`` (Images),
    ``.status`` and ``.code()`` -> ``(latent_dim,)``.
    """
    _check_model(model, "conditional_explorer", conditional=True)
    num_classes = model.config["num_classes"]
    digit, = _check_digits(digit, num_classes)
    latent_dim = model.latent_dim
    base = torch.zeros(latent_dim) if z is None else _as_code(z, latent_dim)
    everything = list(range(num_classes))

    picker = ipywidgets.ToggleButtons(options=everything, value=digit, description="digit")
    picker.style.button_width = "28px"
    n_sliders = min(latent_dim, 6)
    sliders, code, held = _code_sliders(base, n_sliders, limit, step)
    image = _image(render_style(model, code(), [digit], scale), "vaelib-digit")
    row = _image(render_style(model, code(), everything, row_scale, mark=digit), "vaelib-row")
    status = ipywidgets.HTML("")

    def draw():  # a new digit moves the row's underline, a new style changes every digit
        image.value = render_style(model, code(), [picker.value], scale)
        row.value = render_style(model, code(), everything, row_scale, mark=picker.value)

    redraw = _guard(draw, status)
    for control in [picker, *sliders]:
        control.observe(redraw, names="value")

    caption = ipywidgets.HTML(f"<small>decode(z, digit): the picked digit in the style z{held}</small>")
    row_caption = ipywidgets.HTML(f"<small>the same z written as every digit 0-{num_classes - 1}</small>")
    children = [picker, ipywidgets.HBox([ipywidgets.VBox([image, caption]), ipywidgets.VBox(sliders)]),
                row, row_caption, status]
    summary = (f"conditional_explorer: digit {digit}, {n_sliders} style slider(s) over {latent_dim}-D codes, "
               f"a {28 * scale}x{28 * scale} digit and the same style as all {num_classes} digits")
    return Explorer(children, summary, "vaelib-conditional-explorer", picker=picker, sliders=sliders,
                    digit=image, row=row, status=status, code=code)
