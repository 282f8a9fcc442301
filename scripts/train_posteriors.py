"""Train notebook 10's VAEs with richer posteriors by their recipe in vaelib.pretrained.PRETRAINED, and save them.

    python scripts/train_posteriors.py            (nice -n 10 on a shared machine; a few minutes)

``vae_2d_fullcov`` (a full-covariance Gaussian q) and ``vae_2d_flow`` (q a Gaussian through four affine
coupling steps) have ``vae_2d``'s networks (784-256-256-2) and its recipe: after ``vaelib.seed_everything(0)``,
``vaelib.fit`` on the bundled training digits, binarized afresh every epoch, with the held-out ones as
``test_data``. The script first retrains ``vae_2d`` itself by the same recipe, only to time it beside the two
others: the three train side by side, one process and one thread each, so under the same load (the
shipped ``vae_2d`` is left alone). Each file,
``notebooks/checkpoints/<name>.pt`` in float16, holds as extras: ``history`` (fit's, per epoch), ``recipe``,
``seconds`` and ``cpu_seconds`` (its training time, wall clock and CPU, on one thread), ``vae_2d_seconds`` and
``vae_2d_cpu_seconds`` (the baseline's, same run), ``test_loss`` (held-out
-ELBO of the float16 weights, 10 draws of q per digit) and ``iwae`` (held-out log p(x), IWAE with k = 1000
draws of the model's own q). Then ``python scripts/ship_checkpoints.py vae_2d_fullcov vae_2d_flow``
copies them into ``vaelib/assets/``.
"""

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from repo import ROOT

import vaelib
from vaelib.checkpoints import MODEL_CLASSES
from vaelib.posteriors import log_weights
from vaelib.pretrained import LOADERS, PRETRAINED

OUT = ROOT / "notebooks" / "checkpoints"
NAMES = ("vae_2d_fullcov", "vae_2d_flow")
THREADS = 1   # a fixed thread count: the same weights whatever else the machine runs, and comparable timings


def train(name):
    """Train ``name`` by its recipe, with the held-out digits as test_data; return ``(model, history, seconds)``."""
    shipped = PRETRAINED[name]
    x_train, _ = LOADERS[shipped.data]("train")
    x_test, _ = LOADERS[shipped.data]("test", binarize=True)
    vaelib.seed_everything(0)
    model = MODEL_CLASSES[shipped.model](**shipped.config)
    start, cpu = time.perf_counter(), time.process_time()
    history = vaelib.fit(model, x_train, x_test, device="cpu", progress=False, threads=THREADS, **shipped.fit)
    return model.eval(), history, (time.perf_counter() - start, time.process_time() - cpu)


@torch.no_grad()
def heldout_scores(model, x_test):
    """Held-out -ELBO (10 draws of q per digit) and IWAE log p(x) (k = 1000), means over the digits (fixed seed)."""
    torch.manual_seed(1234)
    loss = sum(vaelib.evaluate(model, x_test)["loss"] for _ in range(10)) / 10
    iwae = torch.cat([torch.logsumexp(log_weights(model, x_test[i:i + 100], k=1000), 0) - torch.log(torch.tensor(1000.0))
                      for i in range(0, len(x_test), 100)])
    return loss, iwae.mean().item()


def main():
    x_test, _ = LOADERS["mnist"]("test", binarize=True)
    # side by side, one process and one thread each, so that the three run under the same load
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = dict(zip(("vae_2d", *NAMES), pool.map(train, ("vae_2d", *NAMES))))
    _, _, (baseline, baseline_cpu) = runs["vae_2d"]
    print(f"vae_2d (baseline, not saved): {baseline:.1f} s, {baseline_cpu:.1f} s of CPU time ({THREADS} thread)")
    for name in NAMES:
        shipped = PRETRAINED[name]
        model, history, (seconds, cpu_seconds) = runs[name]
        path = OUT / f"{name}.pt"
        loss, iwae = heldout_scores(vaelib.load_checkpoint(vaelib.save_checkpoint(model, path, dtype=torch.float16)),
                                    x_test)
        vaelib.save_checkpoint(model, path, dtype=torch.float16, history=history, recipe=dict(shipped.fit),
                               seconds=round(seconds, 1), vae_2d_seconds=round(baseline, 1),
                               cpu_seconds=round(cpu_seconds, 1), vae_2d_cpu_seconds=round(baseline_cpu, 1),
                               test_loss=round(loss, 1), iwae=round(iwae, 1))
        print(f"{name}: {shipped.constructor()}, fit({shipped.fit}) in {seconds:.1f} s ({cpu_seconds:.1f} s CPU); held-out -ELBO {loss:.2f}, "
              f"IWAE (k = 1000) log p(x) {iwae:.2f} -> {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
