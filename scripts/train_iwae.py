"""Train notebook 11's IWAE models by their recipe in vaelib.pretrained.PRETRAINED and save them for shipping.

    nice -n 10 python scripts/train_iwae.py [vae_2d_iwae5] [vae_2d_iwae50]      (default: both)

Each is ``IWAE(hidden=[256, 256], latent_dim=2, k=k)``, the 2-D model of notebook 05 trained on minus the
k-sample importance-weighted bound instead of the negative ELBO, with 05's recipe (``shipped.fit``): after
``vaelib.seed_everything(0)``, ``vaelib.fit`` on the bundled training digits, binarized afresh every epoch,
with the fixed binarized held-out digits as ``test_data``. Before them the script trains ``vae_2d``'s recipe
once more, only to time it beside them (its weights are not saved: the shipped ``vae_2d`` is notebook 05's).
It saves ``notebooks/checkpoints/<name>.pt`` in float16 with extras: ``history`` (fit's, per epoch; its
``loss`` is ``-L_k``, ``recon + kl`` a k-sample negative ELBO), ``recipe``, ``seconds`` (CPU seconds of training in one thread,
which other processes on the machine change less than wall time), ``vae_2d_seconds`` (vae_2d's recipe, timed
the same way in the same run), and, for the float16 weights on the
2,000 held-out digits: ``test_loss`` (-ELBO, 10 draws of eps per digit) and ``iwae`` (IWAE, k = 1000).
Then ``python scripts/ship_checkpoints.py vae_2d_iwae5 vae_2d_iwae50`` copies them into ``vaelib/assets/``.
"""

import argparse
import time

import torch
from repo import ROOT
from train_models import heldout_elbo, heldout_iwae

import vaelib
from vaelib.checkpoints import MODEL_CLASSES
from vaelib.pretrained import LOADERS, PRETRAINED

OUT = ROOT / "notebooks" / "checkpoints"
NAMES = ("vae_2d_iwae5", "vae_2d_iwae50")


def train(name):
    """Train ``name`` by its recipe (``shipped.fit``), held-out digits as test_data, in one thread; return
    ``(model, history, seconds)``, the seconds of CPU time the training took (fit's held-out scoring included)."""
    shipped = PRETRAINED[name]
    x_train, _ = LOADERS[shipped.data]("train")
    x_test, _ = LOADERS[shipped.data]("test", binarize=shipped.fit.get("binarize", False))
    vaelib.seed_everything(0)
    model = MODEL_CLASSES[shipped.model](**shipped.config)
    start = time.process_time()
    history = vaelib.fit(model, x_train, x_test, device="cpu", progress=False, threads=1, **shipped.fit)
    return model, history, time.process_time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"which to train, of {', '.join(NAMES)} (default: both)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"{', '.join(unknown)} not among {', '.join(NAMES)}")
    _, _, baseline_seconds = train("vae_2d")
    print(f"vae_2d's recipe: {baseline_seconds:.1f} CPU seconds", flush=True)
    for name in args.names or NAMES:
        shipped = PRETRAINED[name]
        x_test, _ = LOADERS[shipped.data]("test", binarize=True)
        model, history, seconds = train(name)
        path = OUT / f"{name}.pt"
        as_shipped = vaelib.load_checkpoint(vaelib.save_checkpoint(model, path, dtype=torch.float16))
        loss = heldout_elbo(_as_vae(as_shipped), x_test)
        iwae = heldout_iwae(as_shipped, x_test)
        vaelib.save_checkpoint(model, path, dtype=torch.float16, history=history, recipe=dict(shipped.fit),
                               seconds=round(seconds, 1), vae_2d_seconds=round(baseline_seconds, 1),
                               test_loss=round(loss, 1), iwae=round(iwae, 1))
        print(f"{name}: {shipped.constructor()}, fit({shipped.fit}) in {seconds:.1f} CPU seconds (vae_2d's recipe "
              f"{baseline_seconds:.1f}); held-out -ELBO {loss:.2f}, IWAE (k = 1000) {iwae:.2f} -> "
              f"{path.relative_to(ROOT)}", flush=True)


def _as_vae(model):
    """The same networks as a plain VAE, whose loss is the negative ELBO (closed-form KL)."""
    vae = vaelib.VAE(**{k: v for k, v in model.config.items() if k != "k"})
    vae.load_state_dict(model.state_dict())
    return vae.eval()


if __name__ == "__main__":
    main()
