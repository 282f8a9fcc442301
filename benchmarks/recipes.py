"""The recipes tried for the shipped MLP VAEs, re-run: held-out -ELBO and CPU time of each.

    python benchmarks/recipes.py [--only 2|20] [--threads 1]

Each row: ``vaelib.seed_everything(0)``, then ``torch.set_num_threads(threads)`` (1 by default, as the
table in README's "Benchmarks" section was measured), a ``vaelib.VAE`` with the row's hidden sizes and
latent size, ``vaelib.fit`` on the bundled 8,000 training digits, binarized afresh every epoch, with
one fixed binarization of the 2,000 held-out ones as ``test_data``, 30 epochs, the row's batch size, learning rate and schedule. Printed: the held-out
-ELBO (nats, mean over 10 posterior samples per test digit, ``torch.manual_seed(123)``), the training
-ELBO (one sample, one fixed binarization of the first 2,000 training digits), the epoch of the lowest held-out curve point (the
over-fitting check), and the CPU seconds of the ``fit`` call (``time.process_time``; compare rows
with each other, on a shared machine wall time is not meaningful). Same machine, same thread
count: the same figures.
"""

import argparse
import time

import torch

import vaelib

# (hidden, latent, batch, lr, schedule); the two shipped recipes are marked in README
ROWS = [
    ((256, 256), 2, 128, 1e-3, None),
    ((256, 256), 2, 128, 1e-3, "cosine"),
    ((256, 256), 2, 128, 3e-3, "cosine"),
    ((256,), 2, 128, 5e-3, "onecycle"),
    ((512, 512), 2, 256, 2e-3, "cosine"),
    ((256, 256), 2, 128, 3e-3, "onecycle"),
    ((512, 512), 2, 128, 3e-3, "onecycle"),
    ((256, 256), 2, 128, 5e-3, "onecycle"),          # vae_2d
    ((400,), 20, 128, 1e-3, None),
    ((512, 512), 20, 128, 1e-3, "cosine"),
    ((400, 400), 20, 128, 2e-3, "cosine"),
    ((400, 400), 20, 128, 3e-3, "onecycle"),
    ((400,), 20, 128, 3e-3, "cosine"),
    ((400,), 20, 128, 3e-3, "onecycle"),
    ((512,), 20, 128, 3e-3, "onecycle"),
    ((400,), 20, 128, 5e-3, "onecycle"),             # vae_20d
    ((400,), 20, 128, 8e-3, "onecycle"),
]
EPOCHS = 30
EVAL_SAMPLES = 10


def run(hidden, latent, batch, lr, schedule, threads, x, x_test):
    vaelib.seed_everything(0)
    torch.set_num_threads(threads)
    model = vaelib.VAE(hidden=hidden, latent_dim=latent)
    start = time.process_time()
    history = vaelib.fit(model, x, x_test, epochs=EPOCHS, batch_size=batch, lr=lr, schedule=schedule,
                         device="cpu", progress=False, binarize=True)
    cpu = time.process_time() - start
    torch.manual_seed(123)
    test = sum(vaelib.evaluate(model, x_test)["loss"] for _ in range(EVAL_SAMPLES)) / EVAL_SAMPLES
    train = vaelib.evaluate(model, vaelib.data.binarize(x[:2000], torch.Generator().manual_seed(0)))["loss"]
    best = 1 + min(range(len(history["test_loss"])), key=history["test_loss"].__getitem__)
    return test, train, best, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, choices=(2, 20), help="only the rows of this latent size")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    x, _ = vaelib.load_mnist("train")
    x_test, _ = vaelib.load_mnist("test", binarize=True)
    print(f"{EPOCHS} epochs, seed 0, {args.threads} thread(s); held-out -ELBO: mean of {EVAL_SAMPLES} samples "
          f"per digit over {len(x_test):,} test digits")
    print(f"{'model':>16s} {'batch':>5s} {'lr':>6s} {'schedule':>9s} {'held-out':>9s} {'train':>7s} "
          f"{'best ep':>7s} {'CPU s':>6s}")
    for hidden, latent, batch, lr, schedule in ROWS:
        if args.only is not None and latent != args.only:
            continue
        test, train, best, cpu = run(hidden, latent, batch, lr, schedule, args.threads, x, x_test)
        name = "-".join(str(s) for s in (784, *hidden, latent))
        print(f"{name:>16s} {batch:5d} {lr:6.0e} {schedule or 'constant':>9s} {test:9.2f} {train:7.2f} "
              f"{best:7d} {cpu:6.1f}", flush=True)


if __name__ == "__main__":
    main()
