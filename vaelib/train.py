"""Training and evaluation: one plain loop over mini-batches cut from tensors in memory.

MNIST fits in memory many times over, so there is no ``DataLoader``: each epoch draws one random
permutation and gathers each batch's rows out of the data tensor with one ``index_select``, instead
of fetching and collating 128 single samples per batch. ``benchmarks/train_speed.py`` measures
what that and the rest of the loop buy against a conventional ``DataLoader`` loop.
"""

import math

import torch
from tqdm.auto import tqdm


def pick_device():
    """The best available device: ``"cuda"``, then ``"mps"`` (Apple), then ``"cpu"``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _default_optimizer(model, lr):
    """The optimizer :func:`fit` uses unless given one: Adam with ``lr`` and torch's defaults otherwise.

    ``foreach=True`` updates all parameters with a few multi-tensor calls instead of a Python loop
    over them; it is the same arithmetic in the same order, so results are bit-identical to the
    plain loop (``fused=True`` would be faster still on a CPU, but rounds differently).
    """
    return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


def _split_data(data, name, model):
    """Accept an image tensor or an ``(images, labels)`` pair; return ``(images, labels or None)``.

    A conditional model (``model.conditional``) needs the labels.
    """
    images, labels = (data[0], data[1]) if isinstance(data, (tuple, list)) else (data, None)
    if not torch.is_tensor(images) or len(images) == 0:
        raise ValueError(f"{name} must be a non-empty tensor of images or an (images, labels) pair")
    conditional = getattr(model, "conditional", False)
    if conditional and (labels is None or len(labels) != len(images)):
        raise ValueError(f"{type(model).__name__} is conditional: pass {name} as (images, labels), "
                         "with one label per image")
    return images, labels if conditional else None


def _loss_terms(model, x, labels, beta):
    """``model.loss`` of one batch, with the labels when the model is conditional."""
    return model.loss(x, beta) if labels is None else model.loss(x, beta, labels=labels)


@torch.no_grad()
def evaluate(model, data, beta=1.0, batch_size=1000):
    """Mean of each loss term of ``model.loss`` over ``data`` (images or ``(images, labels)``).

    Returns:
        dict of floats in nats per example, e.g. ``{"loss": 140.2, "recon": 134.0, "kl": 6.2}``.
    """
    images, labels = _split_data(data, "data", model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals = {}
    for start in range(0, len(images), batch_size):
        y = None if labels is None else labels[start:start + batch_size].to(device)
        parts = _loss_terms(model, images[start:start + batch_size].to(device), y, beta)
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + value.sum().item()
    model.train(was_training)
    return {name: total / len(images) for name, total in totals.items()}


def fit(model, train_data, test_data=None, epochs=10, batch_size=128, lr=1e-3, beta=1.0,
        device=None, optimizer=None, history=None, progress=True):
    """Train ``model`` by minimizing the batch mean of ``model.loss(x, beta)["loss"]`` with Adam.

    Args:
        model: any vaelib model (its ``loss`` returns per-example terms).
        train_data, test_data: image tensors ``(N, 784)`` / ``(N, 1, 28, 28)``, or ``(images, labels)``
            (labels are required by a conditional model and ignored by the others).
        epochs, batch_size, lr: the usual; ``beta`` weights the KL term of a VAE.
        device: where to train (default :func:`pick_device`); the model goes back where it was after.
        optimizer: an optimizer over ``model.parameters()`` (default: Adam with ``lr``; pass e.g.
            ``torch.optim.Adam(model.parameters(), lr, fused=True)`` for a faster CPU step that
            rounds differently).
        history: a history returned by an earlier call, to continue it.
        progress: show a tqdm progress bar.

    Returns:
        history: dict of lists, one entry per epoch: ``"epoch"``, ``"train_loss"``,
        ``"train_recon"``, ``"train_kl"`` (VAEs) and, with ``test_data``, ``"test_..."`` alike.
        Ctrl-C (KeyboardInterrupt) stops after the current step and returns the history so far.

    Raises:
        FloatingPointError: if a loss becomes NaN or infinite (it names the step).
    """
    images, labels = _split_data(train_data, "train_data", model)
    if test_data is not None:
        _split_data(test_data, "test_data", model)  # check it now, not after the first epoch
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 0, batch_size >= 1 and lr > 0, "
                         f"got epochs={epochs}, batch_size={batch_size}, lr={lr}")
    home = next(model.parameters()).device
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    images = images.to(device)
    labels = None if labels is None else labels.to(device)
    if optimizer is None:
        optimizer = _default_optimizer(model, lr)
    history = history if history is not None else {}
    first_epoch = len(history.get("epoch", [])) + 1
    steps_per_epoch = math.ceil(len(images) / batch_size)
    bar = tqdm(total=epochs * steps_per_epoch, disable=not progress, unit="step")
    step = 0
    try:
        for epoch in range(first_epoch, first_epoch + epochs):
            bar.set_description(f"epoch {epoch}/{first_epoch + epochs - 1}")
            model.train()
            totals = {}
            order = torch.randperm(len(images), device=device)
            for start in range(0, len(images), batch_size):
                step += 1
                rows = order[start:start + batch_size]
                y = None if labels is None else labels.index_select(0, rows)
                parts = _loss_terms(model, images.index_select(0, rows), y, beta)
                loss = parts["loss"].mean()
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"the loss became {loss.item()} at epoch {epoch}, step {step}; "
                        f"try a lower learning rate than lr={lr}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for name, value in parts.items():
                    totals[name] = totals.get(name, 0.0) + value.detach().sum()
                bar.update()
            history.setdefault("epoch", []).append(epoch)
            for name, total in totals.items():
                history.setdefault(f"train_{name}", []).append(total.item() / len(images))
            postfix = {"train": f"{history['train_loss'][-1]:.1f}"}
            if test_data is not None:
                for name, value in evaluate(model, test_data, beta).items():
                    history.setdefault(f"test_{name}", []).append(value)
                postfix["test"] = f"{history['test_loss'][-1]:.1f}"
            bar.set_postfix(postfix)
    except KeyboardInterrupt:
        print(f"Training interrupted at step {step}: keeping the model and the history so far "
              f"({len(history.get('epoch', []))} complete epochs).")
    finally:
        bar.close()
        model.to(home)
    return history
