"""Train the series' MLP VAEs by their recipe in vaelib.pretrained.PRETRAINED and save them for shipping.

    python scripts/train_models.py [vae_2d] [vae_20d]      (default: vae_20d)

Notebook 05 trains ``vae_2d`` live and loads ``vae_20d`` shipped. This script trains ``vae_20d`` (and
``vae_2d``, to check the notebook's figures) exactly as the notebook trains ``vae_2d``: after
``vaelib.seed_everything(0)``, ``vaelib.fit`` on the bundled training digits with the held-out ones as
``test_data`` and the registry's ``fit`` arguments. It saves ``notebooks/checkpoints/<name>.pt`` in
float16, with extras: ``history``, fit's history (per epoch: train_/test_ loss, recon, kl), so 05 can
plot the held-out curve of the model it loads; ``recipe``, the ``fit`` arguments; and ``test_loss``,
the held-out -ELBO of the float16 weights averaged over 10 posterior samples per digit. Then
``python scripts/ship_checkpoints.py`` copies them into ``vaelib/assets/``. Same machine, same
thread count: the same file, bit for bit.
"""

import argparse
import time

import torch
from repo import ROOT

import vaelib
from vaelib.checkpoints import MODEL_CLASSES
from vaelib.pretrained import LOADERS, PRETRAINED

OUT = ROOT / "notebooks" / "checkpoints"
NAMES = ("vae_2d", "vae_20d")
EVAL_SAMPLES = 10   # posterior samples per test digit in the reported -ELBO
IWAE_SAMPLES = 1000  # importance samples per test digit in the reported IWAE estimate


def train(name):
    """Train ``name`` by its recipe, with the held-out digits as test_data; return ``(model, history, seconds)``."""
    shipped = PRETRAINED[name]
    x_train, _ = LOADERS[shipped.data]("train")
    x_test, _ = LOADERS[shipped.data]("test", binarize=shipped.fit.get("binarize", False))
    vaelib.seed_everything(0)
    model = MODEL_CLASSES[shipped.model](**shipped.config)
    start = time.perf_counter()
    history = vaelib.fit(model, x_train, x_test, device="cpu", progress=False, **shipped.fit)
    return model, history, time.perf_counter() - start


def heldout_iwae(model, x_test, k=IWAE_SAMPLES):
    """Mean IWAE estimate of log p(x) per test digit with k importance samples (fixed seed)."""
    torch.manual_seed(1234)
    return vaelib.iwae_log_likelihood(model, x_test, k=k).mean().item()


def heldout_elbo(model, x_test, samples=EVAL_SAMPLES):
    """Mean -ELBO per test digit, averaged over ``samples`` posterior samples (fixed seed)."""
    torch.manual_seed(1234)
    return sum(vaelib.evaluate(model, x_test)["loss"] for _ in range(samples)) / samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["vae_20d"], choices=NAMES)
    args = parser.parse_args(argv)
    for name in args.names:
        shipped = PRETRAINED[name]
        x_test, _ = LOADERS[shipped.data]("test", binarize=shipped.fit.get("binarize", False))
        model, history, seconds = train(name)
        path = OUT / f"{name}.pt"
        as_shipped = vaelib.load_checkpoint(vaelib.save_checkpoint(model, path, dtype=torch.float16))
        loss = heldout_elbo(as_shipped, x_test)
        iwae = heldout_iwae(as_shipped, x_test)
        vaelib.save_checkpoint(model, path, dtype=torch.float16, history=history, recipe=dict(shipped.fit),
                               test_loss=round(loss, 1), iwae=round(iwae, 1))
        print(f"{name}: {shipped.constructor()}, fit({shipped.fit}) in {seconds:.1f} s "
              f"({torch.get_num_threads()} threads); held-out -ELBO {loss:.2f} nats (float16 weights, "
              f"{EVAL_SAMPLES} samples per digit), IWAE (k = {IWAE_SAMPLES}) log p(x) {iwae:.2f} -> {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
