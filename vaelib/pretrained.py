"""The checkpoints that ship with vaelib, so the explorers open with no training: one registry.

``PRETRAINED`` is the one list of them: for each name, the model (class and config) and what
makes it (the notebook or script that trains it, on which bundled data, with which settings of
:func:`vaelib.fit`, after ``seed_everything(0)``). :func:`load_pretrained`, the scripts
``ship_checkpoints.py`` and ``train_conv_checkpoints.py`` and the README's table of shipped
models all read it (``tests/test_pretrained.py`` keeps the README in step).
"""

import inspect
from dataclasses import dataclass

from .checkpoints import MODEL_CLASSES, load_checkpoint
from .data import ASSETS, load_fashion_mnist, load_mnist
from .shapes import load_shapes

LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
LOADERS["shapes"] = load_shapes   # notebook 13's squares (vaelib.shapes), split like the digits


@dataclass(frozen=True)
class Shipped:
    """One shipped checkpoint: the model it holds and the recipe that makes it."""

    model: str      # the class, a key of vaelib.checkpoints.MODEL_CLASSES
    config: dict    # its constructor arguments (the file must hold exactly these)
    data: str       # the bundled training set it learns from: a key of LOADERS
    fit: dict       # keyword arguments of vaelib.fit, after seed_everything(0)
    made_by: str    # the notebook or script that trains it and saves notebooks/checkpoints/<name>.pt
    heldout: bool = False  # fit also scores the held-out split after each epoch (its draws of eps change the weights)

    def constructor(self):
        """The model as code, e.g. ``VAE(hidden=[400], latent_dim=20)``: its sizes, and any other argument
        (input size, sigma head, likelihood) that is not the default."""
        defaults = inspect.signature(MODEL_CLASSES[self.model]).parameters
        shown = [f"{key}={value!r}" for key, value in self.config.items()
                 if key not in ("input_dim", "head", "likelihood") or _plain(defaults[key].default) != value]
        return f"{self.model}({', '.join(shown)})"


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


_MLP = {"input_dim": 784, "head": "softplus", "likelihood": "bernoulli"}
_CONV = {"latent_dim": 20, "channels": [32, 64], "head": "softplus", "likelihood": "bernoulli"}
_ADAM = {"batch_size": 128, "lr": 1e-3}
# notebook 05's recipe: a one-cycle learning-rate schedule peaking at 5e-3, stepped per batch, on digits
# binarized afresh every epoch (the held-out digits: one fixed binarization)
_SERIES_RECIPE = {"epochs": 30, "batch_size": 128, "lr": 5e-3, "schedule": "onecycle", "binarize": True}
# notebook 13's squares: 820 binary training images, so many more epochs of smaller batches
_SHAPES_RECIPE = {"epochs": 200, "batch_size": 64, "lr": 3e-3, "schedule": "onecycle"}

PRETRAINED = {
    "ae_2d": Shipped("Autoencoder", {"sizes": [784, 256, 2], "likelihood": "bernoulli"}, "mnist",
                     {"epochs": 12, **_ADAM}, "notebooks/01_autoencoder.ipynb", heldout=True),
    "vae_2d": Shipped("VAE", {**_MLP, "hidden": [256, 256], "latent_dim": 2}, "mnist",
                      _SERIES_RECIPE, "notebooks/05_training.ipynb", heldout=True),
    "vae_20d": Shipped("VAE", {**_MLP, "hidden": [400], "latent_dim": 20}, "mnist",
                       _SERIES_RECIPE, "scripts/train_models.py", heldout=True),
    "conv_vae_mnist": Shipped("ConvVAE", _CONV, "mnist", _SERIES_RECIPE, "scripts/train_conv_checkpoints.py"),
    "conv_vae_fashion": Shipped("ConvVAE", _CONV, "fashion-mnist", _SERIES_RECIPE,
                                "scripts/train_conv_checkpoints.py"),
    "mlp_vae_fashion": Shipped("VAE", {**_MLP, "hidden": [400], "latent_dim": 20}, "fashion-mnist",
                               _SERIES_RECIPE, "scripts/train_conv_checkpoints.py"),
    # the judge of generated digits (vaelib.judge): trained with judge.train_classifier, not fit; shipped in float32
    "digit_judge": Shipped("DigitClassifier", {"channels": [16, 32], "features": 64}, "mnist",
                           {"epochs": 8, "batch_size": 128, "lr": 2e-3}, "scripts/train_judge.py", heldout=True),
    # notebook 10: vae_2d's networks and recipe, with a richer q(z | x)
    "vae_2d_fullcov": Shipped("FullCovVAE", {"input_dim": 784, "hidden": [256, 256], "latent_dim": 2,
                                              "likelihood": "bernoulli"}, "mnist", _SERIES_RECIPE,
                              "scripts/train_posteriors.py", heldout=True),
    "vae_2d_flow": Shipped("FlowVAE", {"input_dim": 784, "hidden": [256, 256], "latent_dim": 2, "steps": 4,
                                        "flow_hidden": 8, "likelihood": "bernoulli"}, "mnist", _SERIES_RECIPE,
                           "scripts/train_posteriors.py", heldout=True),
    # notebook 11: the 2-D model of 05 trained on the k-sample importance-weighted bound (Burda et al. 2015)
    "vae_2d_iwae5": Shipped("IWAE", {**_MLP, "hidden": [256, 256], "latent_dim": 2, "k": 5}, "mnist",
                            _SERIES_RECIPE, "scripts/train_iwae.py", heldout=True),
    "vae_2d_iwae50": Shipped("IWAE", {**_MLP, "hidden": [256, 256], "latent_dim": 2, "k": 50}, "mnist",
                             _SERIES_RECIPE, "scripts/train_iwae.py", heldout=True),
    # notebook 12: a two-layer hierarchy of vae_20d's sizes (z1 = 20 below z2 = 8) and a small VQ-VAE
    "hvae_2layer": Shipped("HierarchicalVAE", {"input_dim": 784, "hidden": [400], "latent_dims": [20, 8],
                                               "top_hidden": 64, "likelihood": "bernoulli"}, "mnist",
                           _SERIES_RECIPE, "scripts/train_hierarchy_and_vq.py", heldout=True),
    "vqvae_mnist": Shipped("VQVAE", {"num_codes": 32, "code_dim": 16, "channels": [32, 64], "commitment": 0.25,
                                     "likelihood": "bernoulli"}, "mnist", _SERIES_RECIPE,
                           "scripts/train_hierarchy_and_vq.py", heldout=True),
    # notebook 13: VAEs of squares whose factors are known (vaelib.shapes), at beta = 1 and a larger beta
    "shapes_vae_beta1": Shipped("VAE", {**_MLP, "hidden": [128], "latent_dim": 8}, "shapes",
                                {**_SHAPES_RECIPE, "beta": 1.0}, "scripts/train_shapes.py", heldout=True),
    "shapes_vae_beta16": Shipped("VAE", {**_MLP, "hidden": [128], "latent_dim": 8}, "shapes",
                                 {**_SHAPES_RECIPE, "beta": 16.0}, "scripts/train_shapes.py", heldout=True),
}


def pretrained_path(name):
    """Path of a shipped checkpoint (see ``PRETRAINED`` for the names)."""
    if name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}; choose one of {sorted(PRETRAINED)}")
    return ASSETS / f"{name}.pt"


def load_as(path, name):
    """Load the checkpoint at ``path`` and check it is the model ``PRETRAINED[name]`` promises (class and config)."""
    shipped = PRETRAINED[name]
    model = load_checkpoint(path, expect=shipped.config)
    if type(model).__name__ != shipped.model:
        raise ValueError(f"{path} holds a {type(model).__name__}, but {name} is a {shipped.model}")
    return model


def load_pretrained(name):
    """Load a shipped model in eval mode on the CPU, e.g. ``load_pretrained("vae_2d")``."""
    return load_as(pretrained_path(name), name)


def train_from_recipe(name, device="cpu", progress=False):
    """Train the model ``name`` from scratch by its recipe in ``PRETRAINED``; returns it in eval mode.

    On the same machine with the same thread count this gives the shipped weights bit for bit
    (before their rounding to float16).
    """
    from .environment import seed_everything
    from .train import fit

    shipped = PRETRAINED[name]
    x_train, y_train = LOADERS[shipped.data]("train")
    if shipped.model == "DigitClassifier":   # the judge: calibrated on the grey held-out digits
        from .judge import train_classifier

        return train_classifier(x_train, y_train, LOADERS[shipped.data]("test")[0], **shipped.fit)
    binary = shipped.fit.get("binarize", False)
    x_test = LOADERS[shipped.data]("test", binarize=binary)[0] if shipped.heldout else None
    seed_everything(0)
    model = MODEL_CLASSES[shipped.model](**shipped.config)
    fit(model, x_train, x_test, device=device, progress=progress, **shipped.fit)
    return model.eval()


def held_out_score(name):
    """What the shipped file says of its held-out quality, as README's table prints it (a string)."""
    extra = load_checkpoint(pretrained_path(name)).extra
    if PRETRAINED[name].model == "DigitClassifier":
        return f"accuracy {100 * extra['accuracy']:.1f} % (grey digits)"
    if PRETRAINED[name].model == "Autoencoder":
        return f"reconstruction loss {extra['test_loss']:.1f} (grey digits; no likelihood)"
    iwae = f", -log p(x) {-extra['iwae']:.1f} (IWAE, k = 1000)" if "iwae" in extra else ""
    return f"-ELBO {extra['test_loss']:.1f}{iwae}"


def markdown_table():
    """The README's table of shipped models, written from ``PRETRAINED`` and the shipped files' stored scores
    (held-out, nats per image, on one fixed binarization of the held-out split for the VAEs)."""
    rows = ["| name | model | trained on | recipe (after `seed_everything(0)`) | made by | held out |",
            "|---|---|---|---|---|---|"]
    for name, s in PRETRAINED.items():
        if s.model == "DigitClassifier":
            call = "judge.train_classifier(x_train, y_train, x_test, " + ", ".join(f"{k}={v}" for k, v in s.fit.items())
        else:
            call = "fit(" + ", ".join(["x_train", *(["x_test"] if s.heldout else []),
                                       *(f"{k}={v}" for k, v in s.fit.items())])
        rows.append(f"| `{name}` | `{s.constructor()}` | {s.data} (bundled) | `{call})` | `{s.made_by}` "
                    f"| {held_out_score(name)} |")
    return "\n".join(rows)
