"""vaelib.plots: every figure is small, labelled and shows what it was given."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import vaelib
from vaelib import plots

# --- plots ------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def ae():
    torch.manual_seed(0)
    return vaelib.Autoencoder([784, 8, 2]).eval()


@pytest.fixture
def images():
    return torch.rand(12, 784, generator=torch.Generator().manual_seed(0))


def test_backend_is_headless():
    assert matplotlib.get_backend().lower() in ("agg", "module://matplotlib_inline.backend_inline")


@pytest.mark.parametrize("shape", [(12, 784), (12, 1, 28, 28), (12, 28, 28)])
def test_show_images(images, shape):
    fig = plots.show_images(images.reshape(shape), ncols=5, title="digits")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig.axes[0].get_title() == "digits"
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (3 * 29 - 1, 5 * 29 - 1)  # 3 rows of 5, one blank pixel between
    np.testing.assert_allclose(shown[:28, 29:57], images[1].view(28, 28).numpy())
    w, h = fig.get_size_inches()
    assert w < 6 and h < 4  # small figures


def test_show_images_on_given_axes_and_numpy(images):
    fig, axes = plt.subplots(1, 2)
    assert plots.show_images(images.numpy(), ax=axes[1]) is fig
    assert len(axes[1].images) == 1 and len(axes[0].images) == 0


def test_image_grid(images):
    grid = plots.image_grid(images[:7], ncols=3)
    assert grid.shape == (3 * 29 - 1, 3 * 29 - 1) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[58:86, 0:28], images[6].view(28, 28).numpy())
    assert (grid[28, :] == 0).all() and (grid[58:, 29:] == 0).all()  # gaps and empty cells blank
    assert plots.image_grid(images[:3], ncols=10).shape == (28, 3 * 29 - 1)  # fewer than ncols
    assert plots.image_grid(images[:4], ncols=2, pad=0).shape == (56, 56)


@pytest.mark.parametrize("shape", [(12, 100), (5, 3, 27, 27), (2, 1, 28, 29), (784,), (1, 1, 1, 28, 28), (3, 4, 784)])
def test_bad_image_shapes(shape):
    bad = torch.rand(shape)  # the message of the one shape check, vaelib.models.flatten_inputs
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 784\), \(batch, 1, 28, 28\) or \(batch, 28, 28\)"):
        plots.show_images(bad)
    with pytest.raises(ValueError, match="expected inputs of shape"):
        plots.show_reconstructions(bad, bad)
    with pytest.raises(ValueError, match="expected inputs of shape"):
        plots.image_grid(bad)


def test_show_reconstructions(images):
    fig = plots.show_reconstructions(images, images.flip(0), n=6)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["original", "reconstruction"]
    assert fig.axes[0].images[0].get_array().shape == (28, 6 * 29 - 1)


def test_latent_scatter():
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(50) % 10
    fig = plots.latent_scatter(z, labels, title="codes")
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the plot and its colour bar
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), z.numpy())
    assert fig.axes[0].get_title() == "codes"
    bad = [(torch.randn(50, 3), labels), (torch.randn(50, 2), labels[:49]), (torch.randn(50), labels)]
    for bad_z, bad_labels in bad:
        with pytest.raises(ValueError, match=r"expected codes \(N, 2\) and labels \(N,\)"):
            plots.latent_scatter(bad_z, bad_labels)


def test_decode_grid_and_manifold_grid(ae):
    fig = plots.decode_grid(ae, [-1.0, 0.0, 1.0], [-2.0, 2.0], title="plane")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (2 * 28, 3 * 28)
    with torch.no_grad():  # top-left cell is z = (-1, 2): z2 grows upwards
        expected = ae.decode_images(torch.tensor([[-1.0, 2.0]])).view(28, 28).numpy()
    np.testing.assert_allclose(shown[:28, :28], expected, rtol=1e-6, atol=1e-6)
    fig = plots.manifold_grid(ae, n=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig.axes[0].images[0].get_array().shape == (4 * 28, 4 * 28)
    left, right, bottom, top = fig.axes[0].images[0].get_extent()
    assert left == pytest.approx(-1.6449, abs=1e-3) and top == pytest.approx(1.6449, abs=1e-3)


def test_loss_curves():
    history = {"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.0], "train_recon": [2.0, 1.5, 0.8],
               "train_kl": [1.0, 0.5, 0.2], "test_loss": [3.5, 2.5, 1.5]}
    fig = plots.loss_curves(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1  # test curve only where recorded
    np.testing.assert_array_equal(fig.axes[0].lines[1].get_ydata(), [3.5, 2.5, 1.5])
    ae_history = {"epoch": [1, 2], "train_loss": [2.0, 1.0], "train_recon": [2.0, 1.0]}
    ae_axes = plots.loss_curves(ae_history).axes          # an autoencoder: one term, and no ELBO
    assert len(ae_axes) == 1 and ae_axes[0].get_title() == "reconstruction loss"
    assert fig.axes[0].get_title() == "loss (negative ELBO)"
