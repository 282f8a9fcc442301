"""The one registry of shipped models (vaelib.pretrained.PRETRAINED): every file loads safely and is
the model the registry promises, and the README's table is the registry's."""

import ast

import pytest
import torch

import vaelib
from vaelib.pretrained import PRETRAINED, markdown_table

from conftest import ROOT


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_checkpoint_is_the_promised_model_in_float16(name):
    raw = torch.load(vaelib.pretrained_path(name), map_location="cpu", weights_only=True)
    stored = torch.float32 if name == "digit_judge" else torch.float16   # the judge keeps its calibrated threshold exact
    assert {v.dtype for v in raw["state_dict"].values() if v.is_floating_point()} == {stored}
    model = vaelib.load_pretrained(name)
    shipped = PRETRAINED[name]
    assert type(model).__name__ == shipped.model and not model.training
    assert model.config == shipped.config
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert (ROOT / shipped.made_by).exists() and shipped.data in vaelib.pretrained.LOADERS


@pytest.mark.parametrize("name", [n for n, s in PRETRAINED.items() if s.made_by == "scripts/train_conv_checkpoints.py"])
def test_conv_checkpoints_score_their_stored_test_loss(name):  # one draw of eps after manual_seed(0), as 08 does
    model = vaelib.load_pretrained(name)
    x_test, _ = vaelib.pretrained.LOADERS[PRETRAINED[name].data]("test", binarize=True)
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


def _notebook_code(path):
    """The code cells of a notebook as one module (IPython magics dropped)."""
    import json

    cells = json.loads(path.read_text())["cells"]
    lines = [line if not line.lstrip().startswith(("%", "!")) else line[:len(line) - len(line.lstrip())] + "pass"
             for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).split("\n") + [""]]
    return ast.parse("\n".join(lines))


def _literal_call_arguments(call, dicts):
    """Keyword arguments of an ast call as values; ``**NAME`` expands a ``NAME = dict(...)`` of the notebook."""
    found = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            found.update(dicts[keyword.value.id])
        else:
            found[keyword.arg] = ast.literal_eval(keyword.value)
    return found


def _name(node):
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)


@pytest.mark.parametrize("name", [n for n, s in PRETRAINED.items() if s.made_by.endswith(".ipynb")])
def test_registry_recipe_is_what_the_notebook_that_makes_the_model_runs(name):
    """The model a notebook saves as <name>.pt: its constructor and its fit call, read from the notebook's code."""
    shipped = PRETRAINED[name]
    tree = _notebook_code(ROOT / shipped.made_by)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    saves = [c for c in calls if _name(c.func) == "save_checkpoint" and f"{name}.pt" in ast.unparse(c)]
    assert saves, f"{shipped.made_by} does not save {name}.pt"
    variable = saves[0].args[0].id
    dicts = {t.id: _literal_call_arguments(node.value, {}) for node in ast.walk(tree) if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.Call)
             and _name(node.value.func) == "dict"}
    made = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == variable for t in node.targets) and isinstance(node.value, ast.Call)]
    assert [_name(c.func) for c in made] == [shipped.model], f"{variable} is built once, as a {shipped.model}"
    cls = vaelib.checkpoints.MODEL_CLASSES[shipped.model]
    model = cls(*[ast.literal_eval(a) for a in made[0].args], **_literal_call_arguments(made[0], dicts))
    assert model.config == shipped.config
    fits = [c for c in calls if _name(c.func) == "fit" and c.args and getattr(c.args[0], "id", None) == variable]
    assert len(fits) == 1, f"{shipped.made_by} trains {variable} with one fit call"
    assert _literal_call_arguments(fits[0], dicts) == shipped.fit
    assert (len(fits[0].args) == 3) == shipped.heldout, "fit scores held-out data exactly when the registry says so"


@pytest.mark.parametrize("name", [n for n, s in PRETRAINED.items() if s.made_by.startswith("scripts/")])
def test_scripts_that_make_models_train_them_from_the_registry(name):
    text = (ROOT / PRETRAINED[name].made_by).read_text()
    assert "train_from_recipe" in text or "shipped.fit" in text, "a script trains by the registry's recipe"
