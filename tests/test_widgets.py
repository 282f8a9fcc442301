"""vaelib.render (PNG bytes, tiles, the latent map, a model's pictures) and vaelib.widgets (each
explorer driven as a student would: setting a slider's value runs the same callback a drag runs),
including bad input."""

import io

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import vaelib
from vaelib import render, widgets


def decode_png(data):
    """PNG bytes -> uint8 array, read by Pillow (an independent decoder)."""
    return np.asarray(PILImage.open(io.BytesIO(bytes(data))))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"ae": vaelib.Autoencoder([784, 16, 2]).eval(),
            "vae": vaelib.VAE(hidden=(16,), latent_dim=2).eval(),
            "vae_20d": vaelib.VAE(hidden=(16,), latent_dim=20).eval()}


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(12, 784, generator=generator), torch.arange(12) % 10


# --- PNG bytes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(28, 28), (5, 7), (9, 4, 3), (1, 1)])
def test_png_bytes_round_trip(shape):
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    data = widgets.png_bytes(pixels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(decode_png(data), pixels)
    assert widgets.png_shape(data) == shape[:2]


def test_png_bytes_scale_repeats_each_pixel():
    pixels = np.array([[0, 255], [128, 7]], dtype=np.uint8)
    decoded = decode_png(widgets.png_bytes(pixels, scale=3))
    assert decoded.shape == (6, 6)
    np.testing.assert_array_equal(decoded, np.kron(pixels, np.ones((3, 3), dtype=np.uint8)))


@pytest.mark.parametrize("pixels, scale, message", [
    (np.zeros((4, 4), dtype=np.float32), 1, "uint8"),
    (np.zeros((4, 4, 4), dtype=np.uint8), 1, r"\(H, W\) or \(H, W, 3\)"),
    (np.zeros(4, dtype=np.uint8), 1, "uint8"),
    (np.zeros((4, 4), dtype=np.uint8), 0, "scale"),
    (np.zeros((4, 4), dtype=np.uint8), 1.5, "scale"),
])
def test_png_bytes_rejects_bad_input(pixels, scale, message):
    with pytest.raises(ValueError, match=message):
        widgets.png_bytes(pixels, scale)


def test_png_shape_rejects_other_bytes():
    with pytest.raises(ValueError, match="PNG"):
        widgets.png_shape(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match="PNG"):
        widgets.png_shape("not bytes")


def test_to_pixels_is_dark_ink_on_white_paper():
    images = torch.zeros(2, 784)
    images[1] = 1.0
    images[0, 0] = 0.5
    pixels = widgets.to_pixels(images)
    assert pixels.shape == (2, 28, 28) and pixels.dtype == np.uint8
    assert pixels[0, 0, 1] == 255 and pixels[1, 5, 5] == 0 and pixels[0, 0, 0] == 127
    with pytest.raises(ValueError, match="784"):
        widgets.to_pixels(torch.zeros(3, 100))


def test_tile_puts_images_in_rows_with_white_gaps():
    pixels = np.zeros((5, 28, 28), dtype=np.uint8)
    grid = widgets.tile(pixels, ncols=3, pad=2)
    assert grid.shape == (2 * 30 - 2, 3 * 30 - 2)
    assert grid[0, 28] == 255 and grid[0, 0] == 0 and grid[30, 60] == 255  # a gap, a digit, a missing sixth


# --- drawing functions -------------------------------------------------------------------------

def test_render_digit_shows_the_decoded_image(models):
    vae = models["vae"]
    z = torch.tensor([0.5, -1.0])
    pixels = decode_png(widgets.render_digit(vae, z, scale=2))
    assert pixels.shape == (56, 56)
    expected = widgets.to_pixels(vae.decode_images(z[None]))[0]
    np.testing.assert_array_equal(pixels[::2, ::2], expected)


def test_render_digit_rejects_a_code_of_the_wrong_size(models):
    with pytest.raises(ValueError, match=r"shape \(2,\).*latent_dim=2.*got \(20,\)"):
        widgets.render_digit(models["vae"], torch.zeros(20))


def test_render_digits_tiles_codes(models):
    data = widgets.render_digits(models["vae_20d"], torch.randn(6, 20), ncols=3, scale=1)
    assert widgets.png_shape(data) == (58, 88)
    with pytest.raises(ValueError, match=r"\(N, 20\)"):
        widgets.render_digits(models["vae_20d"], torch.randn(6, 2))


def test_encode_mean_is_mu_for_a_vae_and_the_code_for_an_autoencoder(models, data):
    x, _ = data
    torch.testing.assert_close(widgets.encode_mean(models["vae"], x), models["vae"].encode(x)[0].detach())
    torch.testing.assert_close(widgets.encode_mean(models["ae"], x), models["ae"].encode(x).detach())
    with pytest.raises(ValueError, match="Autoencoder or VAE"):
        widgets.encode_mean(torch.nn.Linear(784, 2), x)
    with pytest.raises(ValueError, match="784"):
        widgets.encode_mean(models["vae"], torch.rand(3, 28))


def test_interpolate_walks_the_straight_line():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    torch.testing.assert_close(widgets.interpolate(a, b, 0.0), a)
    torch.testing.assert_close(widgets.interpolate(a, b, 1.0), b)
    torch.testing.assert_close(widgets.interpolate(a, b, 0.25), torch.tensor([1.0, 1.0]))
    assert widgets.interpolate(a, b, torch.linspace(0, 1, 5)).shape == (5, 2)


def test_latent_map_marks_the_point_on_a_copy():
    codes = torch.tensor([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0]])  # the last is off the map
    background = render.latent_map_background(codes, torch.tensor([0, 3, 5]), limit=2.0, size=41)
    assert background.shape == (41, 41, 3) and background.dtype == np.uint8
    assert tuple(background[10, 30]) == tuple(render.TAB10[3])  # z = (1, 1): column 30, row 10
    marked = render.draw_marker(background, [-1.0, 0.0], limit=2.0)
    assert tuple(marked[20, 10]) == (0, 0, 0)  # the ring's centre at z = (-1, 0)
    assert tuple(background[20, 10]) != (0, 0, 0)  # the background is untouched
    assert decode_png(render.render_map(background, [0, 0], limit=2.0)).shape == (41, 41, 3)
    corner = render.draw_marker(background, [5.0, -5.0], limit=2.0)  # clipped to the corner (2, -2)
    assert tuple(corner[40, 40]) == (0, 0, 0)


def test_latent_map_rejects_codes_that_are_not_2d():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        render.latent_map_background(torch.zeros(5, 20), torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        render.latent_map_background(torch.zeros(5, 2), torch.zeros(4))


def test_describe_posterior_rounds_and_truncates():
    text = widgets.describe_posterior(torch.arange(10.0) / 3, torch.ones(10), max_dims=3)
    assert text == "mu    = (0.00, 0.33, 0.67, ...)\nsigma = (1.00, 1.00, 1.00, ...)"


# --- the widgets -------------------------------------------------------------------------------

def test_latent_sliders_redraw_digit_and_map_when_a_slider_moves(models, data):
    vae = models["vae"]
    x, labels = data
    box = widgets.latent_sliders(vae, codes=widgets.encode_mean(vae, x), labels=labels)
    assert len(box.sliders) == vae.latent_dim == 2
    assert widgets.png_shape(box.digit.value) == (140, 140)
    assert widgets.png_shape(box.map.value) == (180, 180)
    digit, map_png = bytes(box.digit.value), bytes(box.map.value)
    box.sliders[0].value = 3.0
    assert bytes(box.digit.value) != digit and bytes(box.map.value) != map_png
    np.testing.assert_array_equal(decode_png(box.digit.value), decode_png(widgets.render_digit(vae, [3.0, 0.0])))
    box.sliders[1].value = -2.5
    torch.testing.assert_close(box.code(), torch.tensor([3.0, -2.5]))
    assert box.status.value == ""
    assert repr(box) == "<latent_sliders: 2 slider(s) over 2-D codes, a 140x140 digit, a map of the latent plane>"


def test_latent_sliders_for_20_dims_hold_the_others_at_the_base_code(models):
    vae = models["vae_20d"]
    base = torch.linspace(-1, 1, 20)
    box = widgets.latent_sliders(vae, base=base)
    assert len(box.sliders) == 6 and box.map is None
    assert [s.value for s in box.sliders] == pytest.approx(base[:6].tolist())
    before = bytes(box.digit.value)
    box.sliders[5].value = 3.5
    assert bytes(box.digit.value) != before
    expected = base.clone()
    expected[5] = 3.5
    torch.testing.assert_close(box.code(), expected)
    assert len(widgets.latent_sliders(vae, n_sliders=20).sliders) == 20


def test_latent_sliders_bad_input(models):
    with pytest.raises(ValueError, match="latent map shows a 2-D latent plane.*latent_dim=20"):
        widgets.latent_sliders(models["vae_20d"], codes=torch.zeros(5, 2), labels=torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        widgets.latent_sliders(models["vae"], codes=torch.zeros(5, 3), labels=torch.zeros(5))
    with pytest.raises(ValueError, match=r"base must have shape \(20,\)"):
        widgets.latent_sliders(models["vae_20d"], base=torch.zeros(2))
    for n in (0, 21, 2.5):
        with pytest.raises(ValueError, match="n_sliders"):
            widgets.latent_sliders(models["vae_20d"], n_sliders=n)
    with pytest.raises(ValueError, match="Autoencoder or VAE"):
        widgets.latent_sliders("vae_2d")
    with pytest.raises(ValueError, match="pass labels="):
        widgets.latent_sliders(models["vae"], codes=torch.zeros(5, 2))


def test_a_failing_update_shows_a_message_and_the_widget_recovers(models, monkeypatch):
    vae = models["vae"]
    box = widgets.latent_sliders(vae)
    before = bytes(box.digit.value)

    def broken(z, labels=None):
        raise RuntimeError("decoder on fire")

    monkeypatch.setattr(vae, "decode_images", broken)
    box.sliders[0].value = 1.0  # no exception escapes into the kernel
    assert "could not update" in box.status.value and "decoder on fire" in box.status.value
    assert bytes(box.digit.value) == before
    monkeypatch.undo()
    box.sliders[0].value = 2.0
    assert box.status.value == "" and bytes(box.digit.value) != before


def test_interpolation_moves_every_model_along_t(models, data):
    x, labels = data
    box = widgets.interpolation({"autoencoder": models["ae"], "VAE": models["vae"]}, x, labels, start=2, end=7)
    assert box.t.min == 0 and box.t.max == 1 and box.start.max == len(x) - 1
    assert list(box.digits) == ["autoencoder", "VAE"]
    before = {name: bytes(image.value) for name, image in box.digits.items()}
    box.t.value = 1.0
    for name, model in (("autoencoder", models["ae"]), ("VAE", models["vae"])):
        assert bytes(box.digits[name].value) != before[name]
        end_code = widgets.encode_mean(model, x[7:8])[0]
        np.testing.assert_array_equal(decode_png(box.digits[name].value),
                                      decode_png(widgets.render_digit(model, end_code, scale=4)))
    strip = bytes(box.strips["VAE"].value)
    box.end.value = 3
    assert bytes(box.strips["VAE"].value) != strip
    assert box.status.value == ""
    assert widgets.png_shape(box.strips["VAE"].value) == (28, 9 * 30 - 2)


def test_interpolation_bad_input(models, data):
    x, labels = data
    pair = {"autoencoder": models["ae"], "VAE": models["vae"]}
    with pytest.raises(ValueError, match="end 12 is outside the test set: choose 0 to 11"):
        widgets.interpolation(pair, x, labels, start=0, end=12)
    with pytest.raises(ValueError, match="start -1 is outside"):
        widgets.interpolation(pair, x, labels, start=-1)
    with pytest.raises(ValueError, match="12 images but 3 labels"):
        widgets.interpolation(pair, x, labels[:3])
    with pytest.raises(ValueError, match="non-empty dict"):
        widgets.interpolation([models["ae"], models["vae"]], x)
    with pytest.raises(ValueError, match="100 inputs, not the 784 pixels"):
        widgets.interpolation({"small": vaelib.VAE(input_dim=100)}, x)
    with pytest.raises(ValueError, match=r"models\['oops'\] must be a vaelib Autoencoder or VAE"):
        widgets.interpolation({"oops": torch.nn.Linear(2, 784)}, x)


def test_encode_and_perturb_resamples_from_the_posterior(models, data):
    x, labels = data
    box = widgets.encode_and_perturb(models["vae_20d"], x, labels, index=4, n_samples=5, scale=1)
    assert widgets.png_shape(box.samples.value) == (28, 6 * 30 - 2)
    assert "test digit #4 (a 4)" in box.text.value and "sigma = (" in box.text.value
    before = bytes(box.samples.value)
    box.resample.click()
    after = bytes(box.samples.value)
    assert after != before
    assert (decode_png(after)[:, :28] == decode_png(before)[:, :28]).all()  # the mean's decoding stays
    original = bytes(box.original.value)
    box.index.value = 9
    assert bytes(box.original.value) != original and "#9 (a 9)" in box.text.value
    assert box.status.value == ""


def test_encode_and_perturb_bad_input(models, data):
    x, labels = data
    with pytest.raises(ValueError, match="needs a VAE.*Autoencoder"):
        widgets.encode_and_perturb(models["ae"], x)
    with pytest.raises(ValueError, match="index 12 is outside the test set: choose 0 to 11"):
        widgets.encode_and_perturb(models["vae"], x, labels, index=12)
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        widgets.encode_and_perturb(models["vae"], x, labels[1:])
    with pytest.raises(ValueError, match="n_samples"):
        widgets.encode_and_perturb(models["vae"], x, n_samples=0)


def test_prior_samples_button_and_temperature(models):
    vae = models["vae_20d"]
    box = widgets.prior_samples(vae, n=6, ncols=3, scale=1)
    assert widgets.png_shape(box.grid.value) == (58, 88)
    first = bytes(box.grid.value)
    box.temperature.value = 0.0  # every sample becomes the decoded prior mean z = 0
    pixels = decode_png(box.grid.value)
    np.testing.assert_array_equal(pixels[:28, :28], pixels[30:, 60:])
    np.testing.assert_array_equal(pixels[:28, :28], widgets.decode_pixels(vae, torch.zeros(1, 20))[0])
    box.temperature.value = 1.0
    assert bytes(box.grid.value) == first  # the same eps, rescaled
    box.new.click()
    assert bytes(box.grid.value) != first
    with pytest.raises(ValueError, match="temperature"):
        widgets.prior_samples(vae, temperature=3.0)


def test_widgets_use_only_core_widgets(models, data):
    """Every part is a core ipywidgets class (ipywidgets 7.7 on Colab has no custom front end for ours)."""
    import ipywidgets

    x, labels = data
    boxes = [widgets.latent_sliders(models["vae"], codes=widgets.encode_mean(models["vae"], x), labels=labels),
             widgets.interpolation({"AE": models["ae"], "VAE": models["vae"]}, x, labels),
             widgets.encode_and_perturb(models["vae"], x, labels),
             widgets.prior_samples(models["vae"]),
             widgets.conditional_explorer(vaelib.ConditionalVAE(hidden=(16,)).eval()),
             widgets.model_slider({1: models["vae"], 2: models["ae"]}, x[:3], torch.zeros(2, 2))]
    core = (ipywidgets.FloatSlider, ipywidgets.IntSlider, ipywidgets.SelectionSlider, ipywidgets.Button, ipywidgets.Image,
            ipywidgets.HTML, ipywidgets.HBox, ipywidgets.VBox, ipywidgets.ToggleButtons)

    def walk(widget):
        yield widget
        for child in getattr(widget, "children", ()):
            yield from walk(child)

    for box in boxes:
        assert box._model_name == "VBoxModel" and box._view_name == "VBoxView"
        for part in walk(box):
            assert type(part) in core or isinstance(part, widgets.Explorer), type(part)


# --- the conditional VAE (notebook 09) -----------------------------------------------------------

@pytest.fixture(scope="module")
def cvae():
    torch.manual_seed(0)
    return vaelib.ConditionalVAE(hidden=(16,), latent_dim=2).eval()


def test_render_style_writes_one_code_as_each_digit(cvae):
    z = torch.tensor([0.5, -1.0])
    data = widgets.render_style(cvae, z, [3, 8], scale=1)
    assert widgets.png_shape(data) == (28, 58)
    pixels = decode_png(data)
    with torch.no_grad():
        expected = widgets.to_pixels(cvae.decode_images(z.repeat(2, 1), torch.tensor([3, 8])))
    np.testing.assert_array_equal(pixels[:, :28], expected[0])
    np.testing.assert_array_equal(pixels[:, 30:], expected[1])
    marked = decode_png(widgets.render_style(cvae, z, [3, 8], scale=1, mark=8))
    assert marked.shape == (32, 58)
    assert (marked[30:32, 30:] == 0).all() and (marked[28:, :28] == 255).all()  # a bar under the 8 only
    assert widgets.render_style(cvae, z, torch.tensor(3)) == widgets.render_style(cvae, z, [3])


def test_conditional_explorer_redraws_for_a_digit_and_a_style(cvae):
    box = widgets.conditional_explorer(cvae, digit=3, scale=2, row_scale=1)
    assert box.picker.value == 3 and list(box.picker.options) == list(range(10))
    assert [s.description for s in box.sliders] == ["z1", "z2"]
    assert widgets.png_shape(box.digit.value) == (56, 56) and widgets.png_shape(box.row.value) == (32, 298)
    row = decode_png(box.row.value)
    np.testing.assert_array_equal(decode_png(box.digit.value)[::2, ::2], row[:28, 90:118])  # the 3 of the row
    assert (row[30:32, 90:118] == 0).all()
    before_digit, before_row = bytes(box.digit.value), bytes(box.row.value)
    box.picker.value = 7  # another digit, same style: the row keeps its digits, the bar moves
    assert bytes(box.digit.value) != before_digit
    moved = decode_png(box.row.value)
    np.testing.assert_array_equal(moved[:28], row[:28])
    assert (moved[30:32, 210:238] == 0).all() and (moved[30:32, 90:118] == 255).all()
    box.sliders[0].value, box.sliders[1].value = 1.5, -2.0  # another style: every digit changes
    torch.testing.assert_close(box.code(), torch.tensor([1.5, -2.0]))
    assert decode_png(box.row.value)[:28].tolist() != row[:28].tolist()
    np.testing.assert_array_equal(decode_png(box.digit.value)[::2, ::2],
                                  decode_png(widgets.render_style(cvae, box.code(), 7, scale=1)))
    assert box.status.value == "" and "digit 3, 2 style slider(s)" in repr(box)


def test_conditional_explorer_starts_from_a_code_and_holds_extra_dimensions():
    torch.manual_seed(0)
    model = vaelib.ConditionalVAE(hidden=(16,), latent_dim=8, num_classes=4).eval()
    start = torch.linspace(-1, 1, 8)
    box = widgets.conditional_explorer(model, digit=2, z=start)
    assert len(box.sliders) == 6 and list(box.picker.options) == [0, 1, 2, 3]
    torch.testing.assert_close(box.code(), start)
    box.sliders[5].value = 2.5
    expected = start.clone()
    expected[5] = 2.5
    torch.testing.assert_close(box.code(), expected)
    assert widgets.png_shape(box.row.value) == (2 * 32, 2 * (4 * 30 - 2))


def test_conditional_explorer_bad_input(cvae, models):
    for digit in (10, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="is not a label of this model: choose a whole number 0 to 9"):
            widgets.conditional_explorer(cvae, digit=digit)
    with pytest.raises(ValueError, match="needs a vaelib ConditionalVAE.*got VAE.*latent_sliders"):
        widgets.conditional_explorer(models["vae"])
    with pytest.raises(ValueError, match="needs a vaelib ConditionalVAE.*got str"):
        widgets.conditional_explorer("cvae")
    with pytest.raises(ValueError, match=r"z must have shape \(2,\)"):
        widgets.conditional_explorer(cvae, z=torch.zeros(3))
    with pytest.raises(ValueError, match="render_style needs a vaelib ConditionalVAE"):
        widgets.render_style(models["vae"], torch.zeros(2), [1])
    with pytest.raises(ValueError, match="mark=5 is not one of the digits shown"):
        widgets.render_style(cvae, torch.zeros(2), [1, 2], mark=5)
    with pytest.raises(ValueError, match="at least one digit"):
        widgets.render_style(cvae, torch.zeros(2), [])
    box = widgets.conditional_explorer(cvae)
    with pytest.raises(Exception):  # the picker itself refuses a digit it does not offer
        box.picker.value = 10
    assert box.status.value == ""


def test_model_slider_shows_the_picked_model(models, data):
    x, _ = data
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    pair = {0.5: models["vae"], 8: models["ae"]}
    box = widgets.model_slider(pair, x[:5], z, captions={0.5: "<b>first</b>", 8: "<b>second</b>"},
                               description="β", ncols=5, scale=1)
    assert list(box.slider.options) == [0.5, 8] and box.slider.value == 0.5 and box.text.value == "<b>first</b>"
    assert box.image.value == widgets.render_model(models["vae"], x[:5], z, ncols=5, scale=1)
    assert widgets.png_shape(box.image.value) == (3 * 30 - 2, 5 * 30 - 2)  # images, reconstructions, decoded z
    box.slider.value = 8
    assert box.image.value == widgets.render_model(models["ae"], x[:5], z, ncols=5, scale=1)
    assert box.text.value == "<b>second</b>" and box.status.value == ""
    assert repr(box).startswith("<model_slider: β over 2 models [0.5, 8]")
    with pytest.raises(ValueError, match=r"value 3 is not one of the models' keys \[0.5, 8\]"):
        widgets.model_slider(pair, x[:5], z, value=3)
    with pytest.raises(ValueError, match="non-empty dict"):
        widgets.model_slider({}, x[:5], z)


def test_a_conditional_model_is_refused_by_the_explorers_of_unconditional_ones(cvae, data):
    x, labels = data
    for call in (lambda: widgets.latent_sliders(cvae), lambda: widgets.prior_samples(cvae),
                 lambda: widgets.encode_and_perturb(cvae, x), lambda: widgets.encode_mean(cvae, x),
                 lambda: widgets.interpolation({"cvae": cvae}, x), lambda: widgets.model_slider({1: cvae}, x, torch.zeros(1, 2))):
        with pytest.raises(ValueError, match="is for unconditional models, but a ConditionalVAE is conditional "
                                             r"\(its decoder needs a label\): use conditional_explorer"):
            call()


def test_tile_is_shared_with_plots_image_grid(data):
    x, _ = data
    grid = vaelib.plots.image_grid(x[:5], ncols=3, pad=1)
    np.testing.assert_array_equal(grid, render.tile(x[:5].numpy().reshape(5, 28, 28), 3, pad=1, fill=0))
