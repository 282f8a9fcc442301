"""The shipped checkpoints load safely and are the models vaelib.pretrained promises."""

import sys
from pathlib import Path

import pytest
import torch

import vaelib
from vaelib.pretrained import PRETRAINED

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from ship_checkpoints import EXPECTED  # noqa: E402


def test_every_shipped_name_has_an_expected_model():
    assert set(PRETRAINED) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_checkpoint_is_the_promised_model_in_float16(name):
    raw = torch.load(vaelib.pretrained_path(name), map_location="cpu", weights_only=True)
    assert {v.dtype for v in raw["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    model = vaelib.load_pretrained(name)
    cls, config = EXPECTED[name]
    assert type(model).__name__ == cls and not model.training
    assert {k: model.config[k] for k in config} == config
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("name", ["conv_vae_mnist", "conv_vae_fashion", "mlp_vae_fashion"])
def test_conv_notebook_checkpoints_score_their_stored_test_loss(name):
    model = vaelib.load_pretrained(name)
    load = vaelib.load_fashion_mnist if "fashion" in name else vaelib.load_mnist
    x_test, _ = load("test")
    torch.manual_seed(0)
    assert abs(vaelib.evaluate(model, x_test)["loss"] - model.extra["test_loss"]) < 0.1
    assert model.extra["epochs"] == 20


def test_unknown_name_says_which_exist():
    with pytest.raises(ValueError, match="conv_vae_mnist"):
        vaelib.load_pretrained("conv_vae")
