"""How fast ``vaelib.train.fit`` trains, against a conventional loop and against the machine's matmul speed.

    python benchmarks/train_speed.py [--repeats 5]

What it measures
----------------
One epoch of the classic 784-400-20 MLP VAE (``vaelib.VAE(hidden=(400,), latent_dim=20)``) over
60,000 images at batch size 128 (469 steps), trained two ways, side by side in one run, each
repetition starting from the same initial weights with the same optimizer (the one ``fit`` uses
by default, ``vaelib.train._default_optimizer``: Adam, lr 1e-3, ``foreach=True``):

* ``fit``: ``vaelib.train.fit(model, x, epochs=1, progress=False)``;
* conventional: ``for (xb,) in DataLoader(TensorDataset(x), batch_size=128, shuffle=True)``:
  ``loss = model.loss(xb, 1.0)["loss"].mean()``, ``zero_grad``, ``backward``, ``step``, and
  ``running += loss.item() * len(xb)`` for the epoch's mean loss (``fit`` keeps its history too).

The images are vaelib's bundled subset (``vaelib.load_mnist("train")``, 8,000 digits) tiled 7.5
times to 60,000 rows: MNIST's size and shape, which is all that speed depends on.

For context, a third contestant: ``fit`` given ``Adam(..., fused=True)`` (one fused kernel per step
on a CPU; the same algorithm, but it rounds differently, so it is not ``fit``'s default).

Matmul throughput is measured in the same run, with the same thread count (2, from
``vaelib.seed_everything(0)``): a 2048 x 2048 float32 matmul, and the 14 matmuls of one training
step at their own shapes (forward ``x @ W.T + b``, input gradient ``g @ W``, weight gradient
``g.T @ x``), each the median of many timings.

Training FLOPs are counted analytically, from the Linear layers only. Per example, a Linear layer
``in -> out`` costs ``2*in*out`` forward and ``4*in*out`` backward (input gradient and weight
gradient), except the first layer, which needs no input gradient (``2*in*out``):

    FLOP per example = 3 * sum_layers(2*in*out) - 2*784*400
                     = 3 * 2*(784*400 + 2*400*20 + 20*400 + 400*784) - 2*784*400 = 3,280,000

so 196.8 GFLOP per epoch of 60,000. Elementwise work (activations, the loss, Adam's update) is
not counted: here it is overhead, like Python and data handling.

How to read it
--------------
* seconds per epoch of each (median over repetitions, min-max in brackets);
* ratio = conventional / fit: how much faster ``fit`` is than the conventional loop;
* achieved GFLOP/s = counted FLOPs / fit's seconds, as a fraction of the square matmul's GFLOP/s:
  how close the training gets to the speed of the machine's best dense arithmetic.
Both are information, not targets: a step's time goes to the same forward, backward and Adam
update in either loop, so batching alone cannot buy much. What a student waits for is a good model;
``benchmarks/time_to_quality.py`` measures that (the series' recipe against a plain script).

Other processes on the same cores make single timings unreliable (a 2-thread step stalls when
another process holds one of the two cores), so the contestants run interleaved, alternating their
order from one repetition to the next, and medians are reported; the load average is printed.
"""

import argparse
import copy
import os
import statistics
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import vaelib
from vaelib.train import _default_optimizer, fit

ROWS = 60_000
BATCH = 128
LR = 1e-3
BETA = 1.0


def tiled_images(rows=ROWS):
    """The bundled training images repeated to ``rows`` rows: ``(rows, 784)`` float32."""
    x, _ = vaelib.load_mnist("train")
    copies = -(-rows // len(x))
    return x.repeat(copies, 1)[:rows].contiguous(), len(x)


def linear_layers(model):
    """``(in, out)`` of every Linear layer, the one that reads the images first."""
    first = model.encoder.body[0]
    layers = [first] + [m for m in model.modules() if isinstance(m, nn.Linear) and m is not first]
    return [(m.in_features, m.out_features) for m in layers]


def flops_per_example(layers):
    """Forward 2*in*out per layer; backward 4*in*out, except 2*in*out for the first layer."""
    forward = sum(2 * i * o for i, o in layers)
    first_in, first_out = layers[0]
    return 3 * forward - 2 * first_in * first_out


def conventional_epoch(model, x):
    """One epoch of the loop most tutorials write; returns the epoch's mean loss."""
    optimizer = _default_optimizer(model, LR)
    loader = DataLoader(TensorDataset(x), batch_size=BATCH, shuffle=True)
    model.train()
    running = 0.0
    for (xb,) in loader:
        loss = model.loss(xb, BETA)["loss"].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running += loss.item() * len(xb)
    return running / len(x)


def fit_epoch(model, x):
    fit(model, x, epochs=1, batch_size=BATCH, lr=LR, beta=BETA, device="cpu", progress=False)


def fit_fused_epoch(model, x):
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    fit(model, x, epochs=1, batch_size=BATCH, lr=LR, beta=BETA, device="cpu", progress=False,
        optimizer=optimizer)


def median_seconds(f, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def square_matmul_seconds(a, b, repeats=5):
    return [median_seconds(lambda: torch.mm(a, b), 1) for _ in range(repeats)]


def step_matmuls(layers):
    """The matmuls of one training step at their own shapes: ``[(name, flops, thunk), ...]``."""
    work = []
    for k, (n_in, n_out) in enumerate(layers):
        x, w, b = torch.rand(BATCH, n_in), torch.randn(n_out, n_in), torch.randn(n_out)
        g = torch.randn(BATCH, n_out)
        flops = 2 * BATCH * n_in * n_out
        work.append((f"{n_in}->{n_out} forward   x @ W.T + b", flops, lambda x=x, w=w, b=b: torch.addmm(b, x, w.t())))
        if k > 0:
            work.append((f"{n_in}->{n_out} input grad g @ W", flops, lambda g=g, w=w: torch.mm(g, w)))
        work.append((f"{n_in}->{n_out} weight grad g.T @ x", flops, lambda g=g, x=x: torch.mm(g.t(), x)))
    return work


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (default 5)")
    args = parser.parse_args()

    vaelib.seed_everything(0)
    x, bundled = tiled_images()
    model0 = vaelib.VAE(hidden=(400,), latent_dim=20)
    layers = linear_layers(model0)
    flops_epoch = flops_per_example(layers) * ROWS
    print(f"data: the {bundled:,} bundled training digits tiled to {ROWS:,} rows {tuple(x.shape)}; "
          f"batch {BATCH}, {-(-ROWS // BATCH)} steps per epoch")
    print(f"model: VAE(hidden=(400,), latent_dim=20), Linear layers {layers}")
    print(f"optimizer (fit's default, and the conventional loop's): {type(_default_optimizer(model0, LR)).__name__}"
          f"(lr={LR}, foreach=True)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average at start {os.getloadavg()[0]:.2f} (while it runs, this script itself adds about 2)")
    print(f"FLOPs per epoch (Linear layers, forward + backward): {flops_epoch / 1e9:.1f} GFLOP")

    contestants = {"fit": fit_epoch, "conventional": conventional_epoch, "fit, fused Adam": fit_fused_epoch}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    step_work = step_matmuls(layers)

    # Warm-up: a short epoch of each, and the matmuls.
    for run in contestants.values():
        run(copy.deepcopy(model0), x[:20 * BATCH])
    square_matmul_seconds(a, b, 2)
    for _, _, thunk in step_work:
        median_seconds(thunk, 5)

    seconds = {name: [] for name in contestants}
    square = []
    shaped = {name: [] for name, _, _ in step_work}
    names = list(contestants)
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            model = copy.deepcopy(model0)
            start = time.perf_counter()
            contestants[name](model, x)
            seconds[name].append(time.perf_counter() - start)
        square += square_matmul_seconds(a, b)
        for name, _, thunk in step_work:
            shaped[name].append(median_seconds(thunk, 15))
        print(f"  repetition {r + 1}/{args.repeats}: "
              + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in names)
              + f"; load {os.getloadavg()[0]:.2f}", flush=True)

    med = {name: statistics.median(t) for name, t in seconds.items()}
    square_gflops = 2 * 2048**3 / statistics.median(square) / 1e9
    print()
    print("seconds per epoch (median, [min-max]):")
    for name, t in seconds.items():
        print(f"  {name:16s} {med[name]:6.2f} s  [{min(t):.2f}-{max(t):.2f}]  "
              f"{med[name] / -(-ROWS // BATCH) * 1000:.2f} ms/step")
    ratio = med["conventional"] / med["fit"]
    paired = statistics.median(c / f for c, f in zip(seconds["conventional"], seconds["fit"]))
    print(f"ratio conventional / fit: {ratio:.2f}x (median of per-repetition ratios {paired:.2f}x)")

    print()
    print(f"float32 matmul, 2048 x 2048 @ 2048 x 2048: {square_gflops:.0f} GFLOP/s (median of {len(square)})")
    print("matmuls at the training's own shapes (batch 128), GFLOP/s:")
    total_flops = total_time = 0.0
    for name, flops, _ in step_work:
        t = statistics.median(shaped[name])
        total_flops += flops
        total_time += t
        print(f"  {name:34s} {flops / t / 1e9:6.0f}")
    shaped_gflops = total_flops / total_time / 1e9
    print(f"  all {len(step_work)} of one step together          {shaped_gflops:6.0f}  "
          f"({total_time * 1000:.2f} ms per step)")

    print()
    for name in ("fit", "conventional", "fit, fused Adam"):
        achieved = flops_epoch / med[name] / 1e9
        print(f"{name:16s} achieves {achieved:5.0f} GFLOP/s = {achieved / square_gflops:5.1%} of the square "
              f"matmul ({achieved / shaped_gflops:5.1%} of the step's matmuls at their shapes)")
    fraction = flops_epoch / med["fit"] / 1e9 / square_gflops
    print()
    print(f"fit against the conventional loop: {ratio:.2f}x; fit's share of the square matmul's speed: {fraction:.1%}")
    print("(information; the time that matters, to a good model, is measured by benchmarks/time_to_quality.py)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
