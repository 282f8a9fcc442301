"""Train the checkpoints of 08_conv_vae: convolutional and MLP VAEs at latent size 20, MNIST and Fashion-MNIST.

Usage: python scripts/train_conv_checkpoints.py [--epochs 20] [name ...]   (default: all three)

The recipe is 05_training's for the shipped ``vae_20d`` (VAE(hidden=(400,), latent_dim=20) on
MNIST), so that 08 compares like with like: the bundled training subset, seed 0, Adam with
lr 1e-3, batch 128, 20 epochs, on the CPU with two threads.

* ``conv_vae_mnist``: ConvVAE(latent_dim=20) on the 8,000 bundled MNIST digits
* ``conv_vae_fashion``: ConvVAE(latent_dim=20) on the 5,000 bundled Fashion-MNIST images
* ``mlp_vae_fashion``: VAE(hidden=(400,), latent_dim=20) on the same Fashion-MNIST images

Each is saved to notebooks/checkpoints/<name>.pt in float16, with extras ``test_loss`` (test
negative ELBO in nats, evaluated after ``torch.manual_seed(0)`` as the notebooks do) and
``epochs``. The same machine and thread count give the same bytes every run, so the time per
epoch is printed, not saved (it changes with the machine's load). Then
``python scripts/ship_checkpoints.py`` checks them and copies them to vaelib/assets/.
08_conv_vae.ipynb holds the same recipe behind its ``RETRAIN`` flag.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "notebooks" / "checkpoints"


def recipes():
    import vaelib

    return {
        "conv_vae_mnist": (lambda: vaelib.ConvVAE(latent_dim=20), vaelib.load_mnist),
        "conv_vae_fashion": (lambda: vaelib.ConvVAE(latent_dim=20), vaelib.load_fashion_mnist),
        "mlp_vae_fashion": (lambda: vaelib.VAE(hidden=(400,), latent_dim=20), vaelib.load_fashion_mnist),
    }


def train(name, epochs=20):
    """Train one checkpoint by its recipe, save it, and return its path."""
    import torch
    import vaelib

    make, load = recipes()[name]
    x_train, _ = load("train")
    x_test, _ = load("test")
    vaelib.seed_everything(0)
    model = make()
    start = time.perf_counter()
    vaelib.fit(model, x_train, epochs=epochs, batch_size=128, lr=1e-3, device="cpu", progress=False)
    seconds = time.perf_counter() - start
    torch.manual_seed(0)
    test_loss = vaelib.evaluate(model, x_test)["loss"]
    path = vaelib.save_checkpoint(model, TARGET / f"{name}.pt", dtype=torch.float16, test_loss=round(test_loss, 1),
                                  epochs=epochs)
    print(f"{name}: {epochs} epochs, {seconds / epochs:.1f} s/epoch, test negative ELBO {test_loss:.1f} "
          f"-> {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KB)", flush=True)
    return path


def main(argv=None):
    sys.path.insert(0, str(ROOT))
    names = list(recipes())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"which to train, of {', '.join(names)} (default: all)")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"no recipe for {', '.join(unknown)}; choose from {', '.join(names)}")
    for name in args.names or names:
        train(name, args.epochs)


if __name__ == "__main__":
    main()
