"""Time to quality: how much sooner the series' recipe reaches the model a plain script ends with.

    python benchmarks/time_to_quality.py [--repeats 3] [--epochs 30] [--device cpu]

What it measures
----------------
1. The plain recipe, as in pytorch/examples' ``vae/main.py``: its 784-400-20 VAE (a log-variance head,
   sigmoid outputs, ``binary_cross_entropy`` summed over pixels and batch plus the KL), Adam with a
   constant learning rate of 1e-3, a ``DataLoader`` over a ``TensorDataset`` with batch 128 and
   ``shuffle=True``, for ``--epochs`` epochs on the bundled 8,000 training digits, each batch binarized
   afresh (dynamic binarization, as the series trains). Its final held-out -ELBO on the 2,000 test digits
   (one fixed binarization, ``load_mnist("test", binarize=True)``) is the quality to reach, E; its
   training time is the plain time. Its IWAE estimate (k = 1000) is printed beside the shipped
   ``vae_20d``'s, so the quality bar (the plain script must not beat the shipped model) is checked too.
2. The series' recipe: ``vaelib.fit`` with the architecture and arguments of ``vae_20d`` in
   ``vaelib.pretrained.PRETRAINED`` (a learning-rate schedule over the whole run), run with growing epoch
   budgets (``BUDGETS``); a schedule is planned for its budget, so each budget is its own run, and
   the first budget whose final held-out -ELBO is at most E gives the recipe's time to quality.

ratio = plain time / recipe's time to quality (target: at least 2).

Both sides are timed the same way: training only (``time.perf_counter`` around the loop / the ``fit``
call, no evaluation inside), 2 threads (``vaelib.seed_everything``), each repetition from a new seed,
plain first in each repetition (its E decides when the recipe stops), medians over repetitions. Held-out -ELBO is
the mean over 10 posterior samples per test digit, from a fixed evaluation seed, for both.

On a machine shared with other work, wall times are noisy: the load average is printed at each
repetition, and the CPU time (``time.process_time``) is printed beside the wall time.
"""

import argparse
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import vaelib
from vaelib.checkpoints import MODEL_CLASSES
from vaelib.pretrained import PRETRAINED

BUDGETS = (6, 8, 10, 12, 14, 16, 18, 20, 25, 30, 40)   # epochs tried for the series' recipe, shortest first
EVAL_SAMPLES = 10


class PlainVAE(nn.Module):
    """pytorch/examples' VAE: 784-400-20, log-variance head, sigmoid outputs."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def plain_loss(recon_x, x, mu, logvar):
    """Summed over pixels and the batch, as in pytorch/examples."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def train_plain(x, epochs, device):
    model = PlainVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x), batch_size=128, shuffle=True)
    model.train()
    for _ in range(epochs):
        for (xb,) in loader:
            xb = torch.bernoulli(xb.to(device))          # dynamic binarization: a fresh draw every epoch
            optimizer.zero_grad()
            loss = _plain_step_loss(model, xb)
            loss.backward()
            optimizer.step()
    return model


def _plain_step_loss(model, xb):
    recon, mu, logvar = model(xb)
    return plain_loss(recon, xb, mu, logvar)


@torch.no_grad()
def heldout_plain(model, x_test, device):
    """Mean -ELBO per test digit (nats), averaged over EVAL_SAMPLES posterior samples."""
    model.eval()
    x_test = x_test.to(device)
    torch.manual_seed(1234)
    total = sum(_plain_step_loss(model, x_test).item() for _ in range(EVAL_SAMPLES))
    return total / EVAL_SAMPLES / len(x_test)


@torch.no_grad()
def heldout_vaelib(model, x_test):
    torch.manual_seed(1234)
    return sum(vaelib.evaluate(model, x_test)["loss"] for _ in range(EVAL_SAMPLES)) / EVAL_SAMPLES


@torch.no_grad()
def iwae_plain(model, x_test, k=1000, batch_size=20):
    """Mean IWAE estimate of log p(x) (nats) of the plain model, k importance samples per test digit."""
    model.eval()
    torch.manual_seed(1234)
    total = 0.0
    for xb in x_test.split(batch_size):
        h = F.relu(model.fc1(xb))
        mu, sigma = model.fc21(h), torch.exp(0.5 * model.fc22(h))
        z = mu + sigma * torch.randn(k, *mu.shape)                                  # (k, b, 20)
        logits = model.fc4(F.relu(model.fc3(z)))                                    # (k, b, 784)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, xb.expand_as(logits), reduction="none").sum(-1)
        normal = torch.distributions.Normal
        log_w = log_px_z + normal(0, 1).log_prob(z).sum(-1) - normal(mu, sigma).log_prob(z).sum(-1)
        total += (torch.logsumexp(log_w, 0) - torch.log(torch.tensor(float(k)))).sum().item()
    return total / len(x_test)


def train_recipe(x, recipe, epochs, device):
    model = MODEL_CLASSES[recipe.model](**recipe.config)
    vaelib.fit(model, x, **{**recipe.fit, "epochs": epochs}, device=device, progress=False)
    return model


def timed(f, *args):
    """``(result, wall seconds, CPU seconds)`` of ``f(*args)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = f(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the plain recipe (default 30)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--budgets", type=lambda text: [int(e) for e in text.split(",")], default=BUDGETS,
                        help=f"epoch budgets of the recipe, comma-separated (default {','.join(map(str, BUDGETS))})")
    args = parser.parse_args()
    device = torch.device(args.device)

    x, _ = vaelib.load_mnist("train")
    x_test, _ = vaelib.load_mnist("test", binarize=True)
    recipe = PRETRAINED["vae_20d"]
    vaelib.seed_everything(0)
    print(f"data: {len(x):,} training and {len(x_test):,} held-out digits (vaelib's bundled split); device {device}")
    print(f"plain: pytorch/examples' 784-400-20 VAE, DataLoader(TensorDataset, batch 128, shuffle), "
          f"Adam lr 1e-3 constant, {args.epochs} epochs")
    print(f"recipe: {recipe.constructor()}, fit({recipe.fit}) with epoch budgets {args.budgets}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")

    train_plain(x[:1280], 1, device)                 # warm-up: first calls load kernels and allocate
    train_recipe(x[:1280], recipe, 1, device)
    rows = []
    for r in range(args.repeats):
        vaelib.seed_everything(r)
        model, wall, cpu = timed(train_plain, x, args.epochs, device)
        target, plain = heldout_plain(model, x_test, device), (wall, cpu)
        if r == 0:
            plain_iwae = iwae_plain(model.cpu(), x_test)
            model.to(device)
        runs = []
        for epochs in args.budgets:                       # shortest budget first, until one reaches E
            vaelib.seed_everything(r)
            model, wall, cpu = timed(train_recipe, x, recipe, epochs, device)
            runs.append((epochs, heldout_vaelib(model.to(device), x_test), wall, cpu))
            if runs[-1][1] <= target:
                break
        first = runs[-1] if runs[-1][1] <= target else None
        rows.append((target, plain, first))
        print(f"  repetition {r + 1}/{args.repeats}: plain E = {target:.2f} nats in {plain[0]:.1f} s "
              f"(CPU {plain[1]:.1f} s); recipe " + ", ".join(f"{e} epochs {q:.2f} in {w:.1f} s" for e, q, w, _ in runs)
              + (f"; reaches E at {first[0]} epochs, {first[2]:.1f} s (CPU {first[3]:.1f} s)" if first else "; never reaches E")
              + f"; load {os.getloadavg()[0]:.2f}", flush=True)

    done = [row for row in rows if row[2] is not None]
    shipped = vaelib.load_pretrained("vae_20d")
    print()
    print(f"quality bar: plain script (repetition 1) IWAE (k = 1000) log p(x) {plain_iwae:.2f} nats; shipped vae_20d "
          f"{shipped.extra['iwae']:.2f} (held-out -ELBO {shipped.extra['test_loss']:.1f}): "
          f"{'the shipped model is better' if shipped.extra['iwae'] >= plain_iwae else 'the plain script BEATS it'}")
    print(f"plain recipe: held-out -ELBO E median {statistics.median(r[0] for r in rows):.2f} nats, "
          f"training {statistics.median(r[1][0] for r in rows):.1f} s wall "
          f"(CPU {statistics.median(r[1][1] for r in rows):.1f} s)")
    if not done:
        print("the series' recipe never reached E within the budgets tried")
        return
    print(f"series' recipe: reaches E in {statistics.median(r[2][2] for r in done):.1f} s wall "
          f"(CPU {statistics.median(r[2][3] for r in done):.1f} s), "
          f"at {statistics.median(r[2][0] for r in done)} epochs (median over {len(done)} of {len(rows)})")
    ratio = statistics.median(r[1][0] / r[2][2] for r in done)
    cpu_ratio = statistics.median(r[1][1] / r[2][3] for r in done)
    print(f"time-to-quality ratio plain / recipe (median of per-repetition ratios): {ratio:.2f}x wall  "
          f"{'met' if ratio >= 2 else 'NOT met'} (target >= 2x); {cpu_ratio:.2f}x in CPU time "
          f"(steadier than wall time on a shared machine)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
