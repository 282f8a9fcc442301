"""Train notebook 12's models by their recipe in vaelib.pretrained.PRETRAINED and save them for shipping.

    python scripts/train_hierarchy_and_vq.py [hvae_2layer] [vqvae_mnist]      (default: both)

As ``scripts/train_models.py`` trains ``vae_20d``: after ``vaelib.seed_everything(0)``, ``vaelib.fit`` on the
bundled training digits (binarized afresh every epoch) with the fixed binarization of the held-out digits as
``test_data``, by the registry's ``shipped.fit``. Saves ``notebooks/checkpoints/<name>.pt`` in float16 with
extras: ``history`` (fit's, per epoch, every loss term), ``recipe`` and, scored on the float16 weights:

* ``hvae_2layer``: ``test_loss``, the held-out -ELBO averaged over 10 draws per digit; ``kl1``, ``kl2``, the
  held-out KL of each layer (same draws); ``iwae``, the held-out IWAE estimate of log p(x), k = 1000.
* ``vqvae_mnist``: ``test_loss``, the held-out -ELBO with a uniform prior over the codes: the reconstruction
  term plus the constant KL 49 log K; ``recon``, the reconstruction term alone.

Then ``python scripts/ship_checkpoints.py hvae_2layer vqvae_mnist`` copies them into ``vaelib/assets/``.
"""

import argparse
import time

import torch
from repo import ROOT

import vaelib
from vaelib.checkpoints import MODEL_CLASSES
from vaelib.hierarchical import hierarchical_iwae
from vaelib.pretrained import LOADERS, PRETRAINED
from vaelib.vq import uniform_prior_kl

OUT = ROOT / "notebooks" / "checkpoints"
NAMES = ("hvae_2layer", "vqvae_mnist")
EVAL_SAMPLES = 10    # posterior samples per held-out digit in the reported -ELBO of the hierarchy
IWAE_SAMPLES = 1000  # importance samples per held-out digit in the reported IWAE estimate


def train(name):
    """Train ``name`` by its recipe, with the held-out digits as test_data; return ``(model, history, seconds)``."""
    shipped = PRETRAINED[name]
    x_train, _ = LOADERS[shipped.data]("train")
    x_test, _ = LOADERS[shipped.data]("test", binarize=True)
    vaelib.seed_everything(0)
    model = MODEL_CLASSES[shipped.model](**shipped.config)
    start = time.perf_counter()
    history = vaelib.fit(model, x_train, x_test, device="cpu", progress=False, **shipped.fit)
    return model, history, time.perf_counter() - start


def scores(name, model, x_test):
    """The held-out figures stored with the checkpoint (see the module docstring)."""
    torch.manual_seed(1234)
    if name == "vqvae_mnist":
        recon = vaelib.evaluate(model, x_test)["recon"]
        return {"test_loss": round(recon + uniform_prior_kl(model.num_codes), 1), "recon": round(recon, 1)}
    runs = [vaelib.evaluate(model, x_test) for _ in range(EVAL_SAMPLES)]
    mean = {term: sum(r[term] for r in runs) / EVAL_SAMPLES for term in runs[0]}
    torch.manual_seed(1234)
    iwae = hierarchical_iwae(model, x_test, k=IWAE_SAMPLES).mean().item()
    return {"test_loss": round(mean["loss"], 1), "kl1": round(mean["kl1"], 1), "kl2": round(mean["kl2"], 1),
            "iwae": round(iwae, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"of {', '.join(NAMES)} (default: both)")
    args = parser.parse_args(argv)
    if set(args.names) - set(NAMES):
        parser.error(f"choose names from {', '.join(NAMES)}")
    x_test, _ = vaelib.load_mnist("test", binarize=True)
    for name in args.names or NAMES:
        shipped = PRETRAINED[name]
        model, history, seconds = train(name)
        path = OUT / f"{name}.pt"
        as_shipped = vaelib.load_checkpoint(vaelib.save_checkpoint(model, path, dtype=torch.float16))
        extra = scores(name, as_shipped, x_test)
        vaelib.save_checkpoint(model, path, dtype=torch.float16, history=history, recipe=dict(shipped.fit), **extra)
        print(f"{name}: {shipped.constructor()}, fit({shipped.fit}) in {seconds:.1f} s "
              f"({torch.get_num_threads()} threads); held out {extra} -> {path.relative_to(ROOT)} "
              f"({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
