"""Train notebook 13's two VAEs of squares (beta = 1 and a larger beta) by their registry recipes, over seeds.

    python scripts/train_shapes.py [name ...]     (default: both; about a minute a model on one idle core)

For each name in NAMES: after ``vaelib.seed_everything(seed)``, ``vaelib.fit`` on the training squares of
``vaelib.shapes.load_shapes("train")`` with the held-out squares as ``test_data`` and the registry's ``fit``
arguments (``PRETRAINED[name].fit``, which holds its beta), once for each seed in SEEDS. The seed-0 model is
saved in float16 to ``notebooks/checkpoints/<name>.pt``; then ``python scripts/ship_checkpoints.py NAME ...``
copies it into ``vaelib/assets/``. Every figure below is measured on the float16 weights (as shipped):

* ``history``: fit's history of the seed-0 model (per epoch: train_/test_ loss, recon, kl);
* ``test_loss``: the held-out -ELBO of the seed-0 model, averaged over 10 posterior samples per square;
* ``seeds``: for every seed, on all 1,024 squares (one draw of eps after ``torch.manual_seed(0)``):
  ``rate`` and ``distortion`` (nats per image), ``mig`` (posterior means in 20 bins), ``active`` (units with
  Var(mu) > 0.01) and ``gaps`` (each factor's normalized gap).

MIG is noisy from seed to seed (Locatello et al. 2019), hence the seeds. Same machine, same thread count:
the same file, bit for bit.
"""

import argparse
import time

import torch
from repo import ROOT

import vaelib
from vaelib import shapes
from vaelib.checkpoints import MODEL_CLASSES
from vaelib.pretrained import LOADERS, PRETRAINED

OUT = ROOT / "notebooks" / "checkpoints"
NAMES = ("shapes_vae_beta1", "shapes_vae_beta16")
SEEDS = (0, 1, 2, 3, 4)
EVAL_SAMPLES = 10


def round_trip(model, path):
    """The model as it ships: its weights rounded to float16 and read back."""
    return vaelib.load_checkpoint(vaelib.save_checkpoint(model, path, dtype=torch.float16))


def measure(model, images, factors):
    """Rate, distortion, MIG, gaps and active units of ``model`` on all the squares."""
    torch.manual_seed(0)
    terms = vaelib.evaluate(model, images)
    with torch.no_grad():
        mu = model.encode(images)[0]
    score = shapes.mig(mu, factors)
    return {"rate": round(terms["kl"], 3), "distortion": round(terms["recon"], 3),
            "mig": round(score["mig"].item(), 4), "gaps": [round(g, 4) for g in score["gaps"].tolist()],
            "active": int(shapes.active_units(mu).sum())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(NAMES), choices=NAMES)
    args = parser.parse_args(argv)
    images, factors = shapes.load_shapes("all")
    for name in args.names:
        shipped = PRETRAINED[name]
        x_train, _ = LOADERS[shipped.data]("train")
        x_test, _ = LOADERS[shipped.data]("test")
        path = OUT / f"{name}.pt"
        per_seed, kept = [], None
        for seed in SEEDS:
            vaelib.seed_everything(seed)
            model = MODEL_CLASSES[shipped.model](**shipped.config)
            start = time.perf_counter()
            history = vaelib.fit(model, x_train, x_test, device="cpu", progress=False, threads=1, **shipped.fit)
            seconds = time.perf_counter() - start
            as_shipped = round_trip(model, path if seed == 0 else OUT / f".{name}_seed.pt")
            per_seed.append({"seed": seed, **measure(as_shipped, images, factors)})
            print(f"{name} seed {seed}: {seconds:.1f} s, {per_seed[-1]}", flush=True)
            if seed == 0:
                kept = (model, history, as_shipped)
        (OUT / f".{name}_seed.pt").unlink(missing_ok=True)
        model, history, as_shipped = kept
        torch.manual_seed(1234)
        test_loss = sum(vaelib.evaluate(as_shipped, x_test)["loss"] for _ in range(EVAL_SAMPLES)) / EVAL_SAMPLES
        vaelib.save_checkpoint(model, path, dtype=torch.float16, history=history, recipe=dict(shipped.fit),
                               test_loss=round(test_loss, 1), seeds=per_seed)
        print(f"{name}: {shipped.constructor()}, fit({shipped.fit}); held-out -ELBO {test_loss:.2f} nats "
              f"-> {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
