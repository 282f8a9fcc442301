"""vaelib.utils (seeding, checkpoints read with weights_only=True) and vaelib.plots (figures)."""

import os
import pickle
import random

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import vaelib
from vaelib import plots, utils


# --- seed_everything -----------------------------------------------------------------------------

def draw():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), vaelib.VAE(hidden=(4,)).sample(2)


def test_seed_everything_repeats_everything():
    vaelib.seed_everything(0)
    first = draw()
    vaelib.seed_everything(0)
    second = draw()
    assert first[:3] == second[:3] and torch.equal(first[3], second[3])
    vaelib.seed_everything(1)
    assert draw()[:3] != first[:3]
    assert torch.get_num_threads() == 2


def test_seed_everything_can_leave_threads_alone():
    torch.set_num_threads(1)
    try:
        vaelib.seed_everything(0, threads=None)
        assert torch.get_num_threads() == 1
    finally:
        vaelib.seed_everything(0)  # back to the two threads the other tests expect


# --- checkpoints -------------------------------------------------------------------------------------

MODELS = {
    "vae": lambda: vaelib.VAE(hidden=(16,), latent_dim=3, head="logvar"),
    "ae": lambda: vaelib.Autoencoder([784, 16, 2], likelihood="gaussian"),
    "conv": lambda: vaelib.ConvVAE(latent_dim=2, channels=(4, 8)),
}


def outputs(model, x):
    with torch.no_grad():
        if isinstance(model, vaelib.VAE):
            mu, sigma = model.encode(x)
            return mu, sigma, model.decode_images(mu)
        return model.encode(x), model.reconstruct(x)


@pytest.fixture
def x():
    return torch.rand(4, 784, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checkpoint_round_trip_float32(tmp_path, x, name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    path = utils.save_checkpoint(model, tmp_path / "sub" / "model.pt", test_loss=98.4, note="ok")
    assert path == tmp_path / "sub" / "model.pt" and path.exists()
    loaded = utils.load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training and loaded.extra == {"test_loss": 98.4, "note": "ok"}
    for a, b in zip(outputs(model, x), outputs(loaded, x)):
        assert torch.equal(a, b)


def test_checkpoint_round_trip_float16(tmp_path, x):
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(64,), latent_dim=2).eval()
    full = utils.save_checkpoint(model, tmp_path / "full.pt")
    half = utils.save_checkpoint(model, tmp_path / "half.pt", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = utils.load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    # exactly the model with its weights rounded to float16
    rounded = vaelib.VAE(hidden=(64,), latent_dim=2).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    for a, b in zip(outputs(rounded, x), outputs(loaded, x)):
        assert torch.equal(a, b)
    for a, b in zip(outputs(model, x), outputs(loaded, x)):  # and close to the original
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


SIDE_EFFECTS = []


def _run_on_unpickle(message):
    SIDE_EFFECTS.append(message)
    return {"class": "VAE", "config": {}, "state_dict": {}}


class Payload:
    """An object whose unpickling calls a function: what weights_only=True must refuse."""

    def __reduce__(self):
        return _run_on_unpickle, ("code ran while loading",)


def test_checkpoint_is_read_with_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(Payload(), path)
    with pytest.raises(ValueError, match="not a vaelib checkpoint readable with weights_only=True"):
        utils.load_checkpoint(path)
    assert SIDE_EFFECTS == []
    with open(tmp_path / "pickled.pt", "wb") as f:  # a plain pickle, not even a torch file
        pickle.dump(Payload(), f, protocol=2)
    with pytest.raises(ValueError, match="weights_only=True"):
        utils.load_checkpoint(tmp_path / "pickled.pt")
    assert SIDE_EFFECTS == []


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "expected a dict with 'class', 'config' and 'state_dict'"),
    ({"class": "VAE", "config": {}}, "expected a dict with 'class', 'config' and 'state_dict'"),
    ({"class": "ResNet", "config": {}, "state_dict": {}}, r"holds a 'ResNet'; expected one of \['Autoencoder'"),
])
def test_checkpoint_wrong_content(tmp_path, content, message):
    torch.save(content, tmp_path / "c.pt")
    with pytest.raises(ValueError, match=message):
        utils.load_checkpoint(tmp_path / "c.pt")


def test_checkpoint_expect(tmp_path):
    path = utils.save_checkpoint(vaelib.VAE(hidden=(8,), latent_dim=3), tmp_path / "m.pt")
    assert utils.load_checkpoint(path, expect={"latent_dim": 3, "hidden": [8]}).latent_dim == 3
    with pytest.raises(ValueError, match="holds a VAE with latent_dim=3, expected latent_dim=2$"):
        utils.load_checkpoint(path, expect={"latent_dim": 2})
    with pytest.raises(ValueError, match="sizes=None, expected sizes="):
        utils.load_checkpoint(path, expect={"sizes": [784, 8, 3]})


def test_checkpoint_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.pt"):
        utils.load_checkpoint(tmp_path / "nothing.pt")


def test_checkpoint_state_dict_of_wrong_shapes(tmp_path):
    small, big = vaelib.VAE(hidden=(8,), latent_dim=2), vaelib.VAE(hidden=(8,), latent_dim=3)
    torch.save({"class": "VAE", "config": small.config, "state_dict": big.state_dict()}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"(?s)does not match a VAE\(.*size mismatch for encoder.mu.weight"):
        utils.load_checkpoint(tmp_path / "m.pt")
    state = dict(small.state_dict())
    state.pop("decoder.net.0.bias")
    torch.save({"class": "VAE", "config": small.config, "state_dict": state}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="decoder.net.0.bias"):
        utils.load_checkpoint(tmp_path / "m.pt")


def test_save_checkpoint_only_vaelib_models(tmp_path):
    with pytest.raises(TypeError, match="can only save"):
        utils.save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_new_files_get_the_umask_mode():
    old = os.umask(0o027)
    try:
        assert vaelib.data.default_file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # reading the mode left the umask as it was
    finally:
        os.umask(old)


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = utils.save_checkpoint(vaelib.VAE(hidden=(8,)), tmp_path / "m.pt", test_loss=1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no .part file left
    assert path.stat().st_mode & 0o777 == vaelib.data.default_file_mode()  # not mkstemp's 0o600
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):  # a write that dies half way (disk full, Ctrl-C)
        if hasattr(f, "write"):
            f.write(b"half a file")
        else:
            with open(f, "wb") as out:
                out.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        utils.save_checkpoint(vaelib.VAE(hidden=(8,)), path, test_loss=2.0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert path.read_bytes() == before  # the old checkpoint is untouched
    monkeypatch.undo()
    assert utils.load_checkpoint(path).extra == {"test_loss": 1.0}


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


@pytest.mark.parametrize("shape", [(12, 784), (12, 1, 28, 28), (12, 28, 28), (3, 4, 784)])
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


@pytest.mark.parametrize("shape", [(12, 100), (5, 3, 27, 27), (2, 1, 28, 29), (784,), (1, 1, 1, 28, 28)])
def test_bad_image_shapes(shape):
    bad = torch.rand(shape)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 784\), \(N, 28, 28\) or \(N, 1, 28, 28\)"):
        plots.show_images(bad)
    with pytest.raises(ValueError, match="expected images of shape"):
        plots.show_reconstructions(bad, bad)
    with pytest.raises(ValueError, match="expected images of shape"):
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
    assert len(plots.loss_curves(ae_history).axes) == 2
