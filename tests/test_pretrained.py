"""The one registry of shipped models (vaelib.pretrained.PRETRAINED): every file loads safely and is
the model the registry promises, and the README's table is the registry's."""

import pytest
import torch

import vaelib
from vaelib.pretrained import PRETRAINED, markdown_table

from conftest import ROOT


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_checkpoint_is_the_promised_model_in_float16(name):
    raw = torch.load(vaelib.pretrained_path(name), map_location="cpu", weights_only=True)
    assert {v.dtype for v in raw["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    model = vaelib.load_pretrained(name)
    shipped = PRETRAINED[name]
    assert type(model).__name__ == shipped.model and not model.training
    assert model.config == shipped.config
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert (ROOT / shipped.made_by).exists() and shipped.data in vaelib.pretrained.LOADERS


@pytest.mark.parametrize("name", [n for n, s in PRETRAINED.items() if s.made_by == "scripts/train_conv_checkpoints.py"])
def test_conv_checkpoints_score_their_stored_test_loss(name):  # one draw of eps after manual_seed(0), as 08 does
    model = vaelib.load_pretrained(name)
    x_test, _ = vaelib.pretrained.LOADERS[PRETRAINED[name].data]("test")
    torch.manual_seed(0)
    assert abs(vaelib.evaluate(model, x_test)["loss"] - model.extra["test_loss"]) < 0.1
    assert model.extra["epochs"] == PRETRAINED[name].fit["epochs"]


def test_readme_lists_the_registry():
    assert markdown_table() in (ROOT / "README.md").read_text(), \
        "README's table of shipped models differs from vaelib.pretrained.PRETRAINED: paste markdown_table()"


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    path = vaelib.save_checkpoint(vaelib.VAE(hidden=(8,), latent_dim=2), tmp_path / "vae_2d.pt")
    with pytest.raises(ValueError, match=r"holds a VAE with hidden=\[8\], expected hidden=\[256, 256\]"):
        vaelib.pretrained.load_as(path, "vae_2d")
    path = vaelib.save_checkpoint(vaelib.Autoencoder(), tmp_path / "ae.pt")
    with pytest.raises(ValueError, match="holds a Autoencoder with"):
        vaelib.pretrained.load_as(path, "vae_2d")


def test_unknown_name_says_which_exist():
    with pytest.raises(ValueError, match="conv_vae_mnist"):
        vaelib.load_pretrained("conv_vae")
