"""Train the checkpoints of 08_conv_vae by their recipes in vaelib.pretrained.PRETRAINED.

Usage: python scripts/train_conv_checkpoints.py [name ...]   (default: every model this script makes)

The registry lists, for each shipped model, its class and config, its bundled training data and
its recipe (``vaelib.fit`` settings after ``seed_everything(0)``, on the CPU with two threads); the
models whose ``made_by`` is this script are the three of 08_conv_vae:

* ``conv_vae_mnist``: ConvVAE(latent_dim=20) on the 8,000 bundled MNIST digits
* ``conv_vae_fashion``: ConvVAE(latent_dim=20) on the 5,000 bundled Fashion-MNIST images
* ``mlp_vae_fashion``: VAE(hidden=(400,), latent_dim=20) on the same Fashion-MNIST images

with 05_training's recipe for ``vae_20d``, so that 08 compares like with like. Each is saved to
notebooks/checkpoints/<name>.pt in float16, with extras ``test_loss`` (test negative ELBO in nats,
evaluated after ``torch.manual_seed(0)`` as the notebooks do, on one fixed binarization of the held-out
images) and ``epochs``; ``--iwae`` then adds ``iwae``, the IWAE estimate of log p(x) with k = 1000
(slow: a step of its own). The same machine and
thread count give the same bytes every run, so the time per epoch is printed, not saved (it
changes with the machine's load). Then ``python scripts/ship_checkpoints.py`` checks them and
copies them to vaelib/assets/. 08_conv_vae.ipynb trains the same way behind its ``RETRAIN`` flag.
"""

import argparse
import time

import torch
from repo import ROOT

import vaelib
from vaelib.pretrained import LOADERS, PRETRAINED, train_from_recipe

TARGET = ROOT / "notebooks" / "checkpoints"
NAMES = [name for name, shipped in PRETRAINED.items() if shipped.made_by == "scripts/train_conv_checkpoints.py"]


def add_iwae(name, k=1000):
    """Score notebooks/checkpoints/<name>.pt's IWAE estimate (k importance samples per held-out image) and
    store it with the file's other extras. Slow for the conv models (two million decodes): a step of its own."""
    path = TARGET / f"{name}.pt"
    model = vaelib.load_checkpoint(path)
    x_test, _ = LOADERS[PRETRAINED[name].data]("test", binarize=PRETRAINED[name].fit.get("binarize", False))
    torch.manual_seed(1234)
    iwae = vaelib.iwae_log_likelihood(model, x_test, k=k).mean().item()
    vaelib.save_checkpoint(model, path, dtype=torch.float16, **{**model.extra, "iwae": round(iwae, 1)})
    print(f"{name}: IWAE (k = {k}) log p(x) {iwae:.1f} nats -> {path.relative_to(ROOT)}", flush=True)


def train(name):
    """Train one checkpoint by its recipe, save it, and return its path."""
    start = time.perf_counter()
    model = train_from_recipe(name)
    epochs = PRETRAINED[name].fit["epochs"]
    seconds = time.perf_counter() - start
    x_test, _ = LOADERS[PRETRAINED[name].data]("test", binarize=PRETRAINED[name].fit.get("binarize", False))
    path = vaelib.save_checkpoint(model, TARGET / f"{name}.pt", dtype=torch.float16)
    model = vaelib.load_checkpoint(path)          # score the float16 weights that ship
    torch.manual_seed(0)
    test_loss = vaelib.evaluate(model, x_test)["loss"]
    path = vaelib.save_checkpoint(model, TARGET / f"{name}.pt", dtype=torch.float16, test_loss=round(test_loss, 1),
                                  epochs=epochs)
    print(f"{name}: {epochs} epochs, {seconds / epochs:.1f} s/epoch, test negative ELBO {test_loss:.1f} "
          f"-> {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KB)", flush=True)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"which to train, of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--iwae", action="store_true",
                        help="instead of training: add the IWAE estimate (k = 1000) to the trained files")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"no recipe for {', '.join(unknown)} in this script; choose from {', '.join(NAMES)}")
    for name in args.names or NAMES:
        add_iwae(name) if args.iwae else train(name)


if __name__ == "__main__":
    main()
