"""Training and evaluation: one plain loop over mini-batches cut from tensors in memory.

MNIST fits in memory many times over, so there is no ``DataLoader``: each epoch draws one random
permutation and gathers each batch's rows out of the data tensor with one ``index_select``, instead
of fetching and collating 128 single samples per batch. ``benchmarks/train_speed.py`` measures
what that and the rest of the loop buy against a conventional ``DataLoader`` loop.
"""

import math

import torch
from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm
from tqdm.std import tqdm as text_tqdm

from .threads import cpu_clock, idle_cpus, threads_for_load

#: The step after which fit first compares its threads with the CPUs that other processes leave idle
#: (a few steps: long enough to measure the load, short enough not to train long on too many threads).
FIRST_LOOK_AT_LOAD = 8

#: What the last fit that followed the load saw when it ended: ``(cpu_clock() reading, thread count)``.
#: The next fit starts from the load since then (or, right after it, from its count), not from scratch.
_last_look = None


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
    conditional = model.conditional
    if conditional and (labels is None or len(labels) != len(images)):
        raise ValueError(f"{type(model).__name__} is conditional: pass {name} as (images, labels), "
                         "with one label per image")
    return images, labels if conditional else None


def _on_device(data, device):
    """``data`` (images, or an ``(images, labels)`` pair) on ``device``, moved once (no copy if already there)."""
    if isinstance(data, (tuple, list)):
        return tuple(part.to(device) if torch.is_tensor(part) else part for part in data)
    return data.to(device) if torch.is_tensor(data) else data


def _check_beta(beta):
    try:
        ok = math.isfinite(float(beta)) and float(beta) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"beta (the weight of the KL term) must be a finite number >= 0, got {beta!r}")


@torch.no_grad()
def evaluate(model, data, beta=1.0, batch_size=1000):
    """Mean of each loss term of ``model.loss`` over ``data`` (images or ``(images, labels)``).

    The data go to the model's device once, and each batch's sums stay there until the end (one
    copy to the host, then added up in float64), so a GPU is not made to wait after every batch.

    Returns:
        dict of floats in nats per example, e.g. ``{"loss": 140.2, "recon": 134.0, "kl": 6.2}``.
    """
    images, labels = _split_data(data, "data", model)
    _check_beta(beta)
    if isinstance(batch_size, bool) or not hasattr(batch_size, "__index__") or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    images = images.to(device)
    labels = None if labels is None else labels.to(device)
    was_training = model.training
    model.eval()
    sums = {}
    for start in range(0, len(images), batch_size):
        y = None if labels is None else labels[start:start + batch_size]
        parts = model.loss(images[start:start + batch_size], beta, labels=y)
        for name, value in parts.items():
            sums.setdefault(name, []).append(value.sum())
    model.train(was_training)
    return {name: sum(torch.stack(batch_sums).tolist()) / len(images) for name, batch_sums in sums.items()}


def _progress_bar(total, summary, progress):
    """A tqdm bar over ``total`` steps, updated at most twice a second.

    In Jupyter it is a widget. A saved notebook opened where the widget cannot be drawn (a static
    render, nbviewer, GitHub) shows the widget's text instead, which tqdm would take at the start:
    an empty bar, "0%". Here that text is ``summary`` (e.g. "training: 30 epochs, 1,890 steps"),
    true however the run went.
    """
    if not progress or not issubclass(tqdm, notebook_tqdm):
        return tqdm(total=total, disable=not progress, unit="step", mininterval=0.5)
    from IPython.display import display

    try:
        bar = tqdm(total=total, unit="step", mininterval=0.5, display=False)
    except ImportError:   # Jupyter without ipywidgets: tqdm's text bar
        return text_tqdm(total=total, unit="step", mininterval=0.5)
    display({"text/plain": summary,
             "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                          "model_id": bar.container.model_id}}, raw=True)
    return bar


SCHEDULES = (None, "constant", "cosine", "onecycle")


def make_scheduler(optimizer, schedule, total_steps):
    """The learning-rate scheduler :func:`fit` steps after every batch, or ``None`` for a constant rate.

    * ``None`` or ``"constant"``: the rate stays at ``lr``.
    * ``"cosine"``: from ``lr`` down to 0 along half a cosine over all the steps (Loshchilov & Hutter, 2017).
    * ``"onecycle"``: up from ``lr / 25`` to ``lr`` in the first 30 % of the steps, then down to about 0
      (Smith & Topin, 2019; ``torch.optim.lr_scheduler.OneCycleLR`` with its defaults).
    * a function ``schedule(optimizer, total_steps)`` that returns any ``torch.optim.lr_scheduler`` object.
    """
    if callable(schedule):
        return schedule(optimizer, total_steps)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES} or a function, got {schedule!r}")
    if schedule in (None, "constant") or total_steps == 0:
        return None
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    max_lr = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps)


def fit(model, train_data, test_data=None, epochs=10, batch_size=128, lr=1e-3, beta=1.0,
        device=None, optimizer=None, history=None, progress=True, schedule=None, binarize=False, threads=None):
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
        schedule: how the learning rate moves over this call's steps, stepped after every batch:
            ``None`` (constant), ``"cosine"``, ``"onecycle"`` or a function (see :func:`make_scheduler`).
        binarize: ``True`` to train on *dynamically binarized* images (Burda et al. 2015): every epoch
            draws a fresh binarization of the grey training images (each pixel ink with its grey
            level's probability), so the model is fitted to binary images a Bernoulli can produce and
            sees a new draw of each digit every time. ``test_data`` is scored as given: pass a fixed
            binarization (``load_mnist("test", binarize=True)``).
        threads: CPU threads for training. ``None`` (the default) follows the load: up to torch's
            thread count when ``fit`` is called (2 after :func:`seed_everything`), but no more threads
            than there are CPUs that other processes leave idle, looked at after the first steps and
            after every epoch (Linux, where the process may use every CPU; elsewhere the count stays).
            Beside a busy process a thread more than the idle CPUs only takes turns with it, and every
            step waits for the thread that lost its turn. On a quiet machine nothing changes. A number fixes the count: results are then
            bit-identical run after run whatever else the machine does (another thread count rounds
            float sums in another order, within the notebooks' stated tolerances).

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
    if not isinstance(binarize, bool):
        raise ValueError(f"binarize must be True or False, got {binarize!r}")
    if binarize and (images.min() < 0 or images.max() > 1):
        raise ValueError("binarize=True needs grey levels in [0, 1] (the probability of ink)")
    _check_beta(beta)
    whole = [(name, v) for name, v in (("epochs", epochs), ("batch_size", batch_size))
             if isinstance(v, bool) or not hasattr(v, "__index__")]
    if whole:
        raise ValueError(f"{whole[0][0]} must be a whole number, got {whole[0][1]!r}")
    if threads is not None and (isinstance(threads, bool) or not hasattr(threads, "__index__") or threads < 1):
        raise ValueError(f"threads must be None (follow the load) or a whole number >= 1, got {threads!r}")
    if epochs < 0 or batch_size < 1 or not lr > 0:
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
    scheduler = make_scheduler(optimizer, schedule, epochs * steps_per_epoch)
    bar = _progress_bar(epochs * steps_per_epoch,
                        f"training: {epochs} epochs, {epochs * steps_per_epoch:,} steps", progress)
    check_every_step = device.type == "cpu"   # elsewhere the check would make the host wait for each step
    test_data = None if test_data is None else _on_device(test_data, device)
    step = 0
    most_threads = torch.get_num_threads()
    follow_load = device.type == "cpu" and threads is None
    if device.type == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    if follow_load:
        torch.set_num_threads(_threads_to_start_with(most_threads))
    load = cpu_clock() if follow_load else None
    try:
        for epoch in range(first_epoch, first_epoch + epochs):
            bar.set_description(f"epoch {epoch}/{first_epoch + epochs - 1}")
            model.train()
            totals = {}
            order = torch.randperm(len(images), device=device)
            epoch_images = torch.bernoulli(images) if binarize else images   # a fresh draw every epoch
            for start in range(0, len(images), batch_size):
                step += 1
                rows = order[start:start + batch_size]
                y = None if labels is None else labels.index_select(0, rows)
                parts = model.loss(epoch_images.index_select(0, rows), beta, labels=y)
                loss = parts["loss"].mean()
                if check_every_step and not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"the loss became {loss.item()} at epoch {epoch}, step {step}; "
                        f"try a lower learning rate than lr={lr}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                for name, value in parts.items():
                    totals[name] = totals.get(name, 0.0) + value.detach().sum()
                bar.update()
                if follow_load and (step == FIRST_LOOK_AT_LOAD or start + batch_size >= len(images)):
                    count = threads_for_load(load, most=most_threads)   # idle CPUs since the last look
                    if count != torch.get_num_threads():
                        torch.set_num_threads(count)
                    load = cpu_clock()
            if not check_every_step and not all(torch.isfinite(t) for t in totals.values()):
                raise FloatingPointError(f"the loss became {totals['loss'].item()} during epoch {epoch}; "
                                         f"try a lower learning rate than lr={lr}")
            history.setdefault("epoch", []).append(epoch)
            for name, total in totals.items():
                history.setdefault(f"train_{name}", []).append(total.item() / len(images))
            postfix = {"train": f"{history['train_loss'][-1]:.1f}"}
            if test_data is not None:
                for name, value in evaluate(model, test_data, beta).items():
                    history.setdefault(f"test_{name}", []).append(value)
                postfix["test"] = f"{history['test_loss'][-1]:.1f}"
            bar.set_postfix(postfix, refresh=False)
    except KeyboardInterrupt:
        print(f"Training interrupted at step {step}: keeping the model and the history so far "
              f"({len(history.get('epoch', []))} complete epochs).")
    finally:
        bar.close()
        model.to(home)
        if follow_load:
            global _last_look
            _last_look = (cpu_clock(), torch.get_num_threads())
        if device.type == "cpu" and torch.get_num_threads() != most_threads:
            torch.set_num_threads(most_threads)
    return history


def _threads_to_start_with(most):
    """The thread count a fit that follows the load starts with: from the load since the last such fit
    ended (if that was a while ago), or that fit's own count (if it ended just now), else ``most``."""
    if _last_look is None:
        return most
    reading, count = _last_look
    idle = idle_cpus(reading)
    if idle is None:                      # the last fit ended moments ago: its last look still holds
        return max(1, min(most, count))
    return threads_for_load(reading, most=most)
