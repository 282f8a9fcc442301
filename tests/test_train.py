"""vaelib.train: fit learns, keeps a history, follows a learning-rate schedule, stops cleanly on NaN
and on Ctrl-C, puts the model back where it was, leaves a true text for static renders of its bar;
evaluate averages correctly; pick_device; the CUDA paths (skipped without a GPU)."""

import contextlib
import io
import math

import pytest
import torch
import tqdm.notebook

import vaelib
from vaelib import train


@pytest.fixture(scope="module")
def mnist():
    x, _ = vaelib.load_mnist("train")
    x_test, _ = vaelib.load_mnist("test")
    return x[:2000], x_test[:500]


class FailingVAE(vaelib.VAE):
    """A VAE whose loss misbehaves at training step ``at`` (steps counted from 1, training mode only)."""

    def __init__(self, at, failure, **kwargs):
        super().__init__(**kwargs)
        self.at, self.failure, self.steps = at, failure, 0

    def loss(self, x, beta=1.0, labels=None):
        parts = super().loss(x, beta, labels)
        if self.training:
            self.steps += 1
            if self.steps == self.at:
                if self.failure == "nan":
                    return {**parts, "loss": parts["loss"] * float("nan")}
                raise self.failure
        return parts


class MoveRecordingVAE(vaelib.VAE):
    """A VAE that records every device it is moved to."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.moves = []

    def to(self, *args, **kwargs):
        self.moves.append(torch.device(args[0]) if args else kwargs.get("device"))
        return super().to(*args, **kwargs)


def small_vae(cls=vaelib.VAE, **kwargs):
    torch.manual_seed(0)
    return cls(hidden=(32,), latent_dim=2, **kwargs)


def test_fit_lowers_the_test_loss(mnist):
    x, x_test = mnist
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(64,), latent_dim=2)
    before = vaelib.evaluate(model, x_test)
    history = vaelib.fit(model, x, x_test, epochs=2, batch_size=100, lr=3e-3, progress=False)
    assert set(history) == {"epoch", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl"}
    assert history["epoch"] == [1, 2]
    assert all(len(v) == 2 and all(isinstance(e, float) for e in v) for k, v in history.items() if k != "epoch")
    assert history["test_loss"][-1] < before["loss"] - 150  # about 549 -> 220 nats
    assert history["train_loss"][1] < history["train_loss"][0]
    for split in ("train", "test"):
        for a, b, c in zip(history[f"{split}_loss"], history[f"{split}_recon"], history[f"{split}_kl"]):
            assert a == pytest.approx(b + c, rel=1e-5)
    # the last test entry is what evaluate says about the trained model (up to the sampled z)
    assert vaelib.evaluate(model, x_test)["loss"] == pytest.approx(history["test_loss"][-1], abs=3.0)
    assert model.training  # fit leaves the model in training mode, ready for more


def test_fit_continues_a_history_and_beta_weights_the_kl(mnist):
    x, x_test = mnist
    model = small_vae()
    history = vaelib.fit(model, x[:300], x_test[:100], epochs=2, batch_size=100, progress=False)
    same = vaelib.fit(model, x[:300], x_test[:100], epochs=1, batch_size=100, history=history, progress=False)
    assert same is history
    assert history["epoch"] == [1, 2, 3]
    assert all(len(v) == 3 for v in history.values())
    h = vaelib.fit(small_vae(), x[:300], epochs=1, beta=0.0, progress=False)
    assert h["train_loss"][0] == pytest.approx(h["train_recon"][0], rel=1e-6)
    assert h["train_kl"][0] > 0


@pytest.mark.parametrize("recipe", [{}, {"lr": 3e-3, "schedule": "onecycle"}], ids=["constant", "onecycle"])
def test_fit_is_reproducible(mnist, recipe):   # with a fixed thread count, whatever the machine's load
    x, _ = mnist
    runs = []
    for _ in range(2):
        model = small_vae()
        torch.manual_seed(1)
        history = vaelib.fit(model, x[:300], epochs=2, batch_size=64, progress=False, threads=2, **recipe)
        runs.append((history, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


@pytest.mark.parametrize("schedule, first, last", [
    (None, 1e-2, 1e-2), ("constant", 1e-2, 1e-2),
    ("cosine", 1e-2, 1e-2 * (1 + math.cos(math.pi * 9 / 10)) / 2), ("onecycle", 1e-2 / 25, 1e-2 / 25 / 1e4)])
def test_fit_steps_the_schedule_once_per_batch(mnist, schedule, first, last):
    x, _ = mnist
    model = small_vae()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    seen = []   # the learning rate of each step
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    vaelib.fit(model, x[:500], epochs=2, batch_size=100, optimizer=optimizer, schedule=schedule, progress=False)
    assert len(seen) == 10 and seen[0] == pytest.approx(first) and seen[-1] == pytest.approx(last)
    if schedule == "cosine":
        assert seen == sorted(seen, reverse=True) and seen[5] == pytest.approx(1e-2 / 2)
    if schedule == "onecycle":
        assert max(seen) == pytest.approx(1e-2) and seen.index(max(seen)) == 2   # up for 30 % of the 10 steps


def test_fit_accepts_a_schedule_function_and_rejects_unknown_names(mnist):
    x, _ = mnist
    calls = []

    def halve_each_step(optimizer, total_steps):
        calls.append(total_steps)
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)

    model = small_vae()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    vaelib.fit(model, x[:300], epochs=1, batch_size=100, optimizer=optimizer, schedule=halve_each_step, progress=False)
    assert calls == [3] and optimizer.param_groups[0]["lr"] == 1e-3 / 8
    with pytest.raises(ValueError, match="schedule must be one of"):
        vaelib.fit(small_vae(FailingVAE, at=1, failure=AssertionError("trained")), x[:10], schedule="cosin",
                   progress=False)


def test_progress_bar_in_a_notebook_stores_a_true_text(monkeypatch, mnist):
    """In Jupyter the bar is a widget; a static render shows its text/plain, which must not read 0 %."""
    x, _ = mnist
    monkeypatch.setattr(train, "tqdm", tqdm.notebook.tqdm)
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):   # outside a kernel, IPython's display prints the bundle
        vaelib.fit(small_vae(), x[:300], epochs=2, batch_size=100)
    assert "'text/plain': 'training: 2 epochs, 6 steps'" in shown.getvalue()
    assert "application/vnd.jupyter.widget-view+json" in shown.getvalue() and "0%" not in shown.getvalue()


def test_fit_an_autoencoder_and_image_shaped_data(mnist):
    x, x_test = mnist
    torch.manual_seed(0)
    model = vaelib.Autoencoder([784, 32, 2])
    history = vaelib.fit(model, x[:300].view(-1, 1, 28, 28), (x_test[:100], torch.zeros(100, dtype=torch.int64)),
                         epochs=2, batch_size=100, progress=False)
    assert set(history) == {"epoch", "train_loss", "train_recon", "test_loss", "test_recon"}
    assert history["train_loss"][1] < history["train_loss"][0]


def test_fit_stops_on_nan_naming_the_step(mnist):
    x, _ = mnist
    model = small_vae(FailingVAE, at=3, failure="nan")
    with pytest.raises(FloatingPointError, match=r"nan at epoch 2, step 3; try a lower learning rate than lr=0.001"):
        vaelib.fit(model, x[:200], epochs=3, batch_size=100, lr=1e-3, progress=False)


def test_fit_with_a_huge_learning_rate_fails_clearly(mnist):
    x, _ = mnist
    model = small_vae()
    with pytest.raises(FloatingPointError, match=r"step \d+; try a lower learning rate than lr=1e\+30"):
        vaelib.fit(model, x[:500], epochs=3, batch_size=100, lr=1e30, progress=False)


def test_ctrl_c_returns_the_history_so_far(mnist, capsys):
    x, _ = mnist
    model = small_vae(FailingVAE, at=3, failure=KeyboardInterrupt())
    start = [p.detach().clone() for p in model.parameters()]
    history = vaelib.fit(model, x[:200], epochs=5, batch_size=100, progress=False)  # 2 steps an epoch
    assert history["epoch"] == [1] and len(history["train_loss"]) == 1
    assert model.steps == 3
    assert any(not torch.equal(a, b) for a, b in zip(start, model.parameters()))  # two steps were kept
    assert "interrupted at step 3" in capsys.readouterr().out
    # and training can go on from there
    model.at = None
    history = vaelib.fit(model, x[:200], epochs=1, batch_size=100, history=history, progress=False)
    assert history["epoch"] == [1, 2]


@pytest.mark.parametrize("failure", [None, "nan", KeyboardInterrupt()])
def test_fit_returns_the_model_to_its_device(mnist, failure):
    x, _ = mnist
    if failure is None:
        model = small_vae(MoveRecordingVAE)
    else:
        model = small_vae(type("Both", (FailingVAE, MoveRecordingVAE), {}), at=2, failure=failure)
    home = next(model.parameters()).device
    try:
        vaelib.fit(model, x[:200], epochs=2, batch_size=100, device="cpu", progress=False)
    except FloatingPointError:
        assert failure == "nan"
    assert model.moves[0] == torch.device("cpu")   # to the training device first ...
    assert model.moves[-1] == home                  # ... and back home, whatever happened
    assert next(model.parameters()).device == home


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_returns_the_model_to_the_cpu(mnist):
    x, x_test = mnist
    model = small_vae()
    history = vaelib.fit(model, x[:300], x_test[:100], epochs=1, device="cuda", progress=False)
    assert next(model.parameters()).device == torch.device("cpu") and len(history["epoch"]) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_evaluate_and_iwae_match_the_cpu_closely(mnist):
    x, x_test = mnist
    model = small_vae()
    history = vaelib.fit(model, x[:1000], x_test[:200], epochs=2, lr=3e-3, schedule="cosine", device="cuda",
                         progress=False)
    assert history["test_loss"][1] < history["test_loss"][0]
    assert next(model.parameters()).device.type == "cpu"
    on_cpu = vaelib.evaluate(model, x_test[:200])["loss"]
    model.to("cuda")
    torch.manual_seed(0)
    on_gpu = vaelib.evaluate(model, x_test[:200])["loss"]          # CPU data, CUDA model: moved once
    assert on_gpu == pytest.approx(on_cpu, abs=3.0)
    elbo = -vaelib.evaluate(model, x_test[:50])["loss"]
    log_px = vaelib.iwae_log_likelihood(model, x_test[:50], k=100)
    assert log_px.shape == (50,) and torch.isfinite(log_px).all()
    assert elbo - 1.0 < log_px.mean().item() < elbo + 20.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_stops_on_nan_by_the_end_of_the_epoch(mnist):
    x, _ = mnist
    model = small_vae(FailingVAE, at=3, failure="nan")
    with pytest.raises(FloatingPointError, match=r"nan during epoch 2; try a lower learning rate"):
        vaelib.fit(model, x[:200], epochs=3, batch_size=100, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("kwargs", [{"epochs": -1}, {"lr": 0}, {"lr": -1e-3}, {"batch_size": 0}])
def test_fit_bad_arguments(mnist, kwargs):
    x, _ = mnist
    with pytest.raises(ValueError, match="need epochs >= 0, batch_size >= 1 and lr > 0"):
        vaelib.fit(small_vae(), x[:10], **kwargs, progress=False)


@pytest.mark.parametrize("bad", [torch.empty(0, 784), [1, 2, 3], None])
def test_fit_bad_data(bad):
    with pytest.raises(ValueError, match="train_data must be a non-empty tensor"):
        vaelib.fit(small_vae(), bad, progress=False)


def test_fit_checks_test_data_before_training(mnist):
    x, _ = mnist
    model = small_vae(FailingVAE, at=1, failure=AssertionError("trained before checking test_data"))
    with pytest.raises(ValueError, match="test_data must be a non-empty tensor"):
        vaelib.fit(model, x[:10], torch.empty(0, 784), progress=False)


def test_fit_zero_epochs_changes_nothing(mnist):
    x, _ = mnist
    model = small_vae()
    start = [p.detach().clone() for p in model.parameters()]
    assert vaelib.fit(model, x[:10], epochs=0, progress=False) == {}
    assert all(torch.equal(a, b) for a, b in zip(start, model.parameters()))


def test_evaluate_returns_floats_and_averages_over_examples(mnist):
    _, x_test = mnist
    torch.manual_seed(0)
    model = vaelib.Autoencoder([784, 16, 2]).train()
    result = vaelib.evaluate(model, x_test[:20], batch_size=7)  # batches of 7, 7 and 6
    assert set(result) == {"loss", "recon"} and all(type(v) is float for v in result.values())
    with torch.no_grad():
        assert result["loss"] == pytest.approx(model.loss(x_test[:20])["loss"].mean().item(), rel=1e-6)
    assert model.training  # evaluate puts the mode back
    vae = small_vae().eval()
    parts = vaelib.evaluate(vae, x_test[:50], beta=2.0)
    assert set(parts) == {"loss", "recon", "kl"} and all(type(v) is float for v in parts.values())
    assert parts["loss"] == pytest.approx(parts["recon"] + 2.0 * parts["kl"], rel=1e-5)
    assert not vae.training


def test_pick_device(monkeypatch):
    if not torch.cuda.is_available():
        assert train.pick_device() == torch.device("cpu")  # this machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert train.pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert train.pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert train.pick_device() == torch.device("cuda")


def test_fit_with_binarize_draws_a_fresh_binarization_every_epoch(monkeypatch):
    seen = []
    model = vaelib.VAE(hidden=(8,), latent_dim=2)
    original = model.loss

    def spy(x, beta=1.0, labels=None):
        seen.append(x.detach().clone())
        return original(x, beta, labels=labels)

    monkeypatch.setattr(model, "loss", spy)
    grey = torch.full((16, 784), 0.5)
    vaelib.seed_everything(0)
    vaelib.fit(model, grey, epochs=2, batch_size=16, device="cpu", progress=False, binarize=True)
    first, second = seen
    assert set(first.unique().tolist()) == {0.0, 1.0} and not torch.equal(first, second)
    with pytest.raises(ValueError, match="binarize must be True or False"):
        vaelib.fit(model, grey, epochs=1, device="cpu", progress=False, binarize=1)
    with pytest.raises(ValueError, match=r"grey levels in \[0, 1\]"):
        vaelib.fit(vaelib.VAE(hidden=(8,), latent_dim=2, likelihood="gaussian"), grey * 3, epochs=1, device="cpu",
                   progress=False, binarize=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 1.5}, "epochs must be a whole number, got 1.5"),
    ({"batch_size": 0}, "need epochs >= 0, batch_size >= 1"),
    ({"lr": float("nan")}, "lr > 0"),
    ({"beta": -1.0}, r"beta \(the weight of the KL term\) must be a finite number >= 0, got -1.0"),
    ({"beta": float("nan")}, "beta"),
])
def test_fit_refuses_settings_that_mean_nothing(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vaelib.fit(vaelib.VAE(hidden=(8,)), torch.rand(4, 784), device="cpu", progress=False, **{"epochs": 1, **kwargs})


def test_evaluate_refuses_a_batch_size_or_beta_that_means_nothing():
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        vaelib.evaluate(vaelib.VAE(hidden=(8,)), torch.rand(3, 784), batch_size=0)
    with pytest.raises(ValueError, match="beta"):
        vaelib.evaluate(vaelib.VAE(hidden=(8,)), torch.rand(3, 784), beta=-2)


def test_fit_follows_the_load_and_gives_the_threads_back(mnist, monkeypatch):
    x, _ = mnist
    looks, seen = [], []

    def busy_machine(start, end=None, most=None):   # as if another process kept one of two CPUs busy
        looks.append(most)
        return 1

    class Watched(vaelib.VAE):
        def loss(self, *args, **kwargs):
            seen.append(torch.get_num_threads())
            return super().loss(*args, **kwargs)

    monkeypatch.setattr(train, "threads_for_load", busy_machine)
    monkeypatch.setattr(train, "_last_look", None)   # no earlier fit to start from
    torch.set_num_threads(2)
    model = Watched(input_dim=784, hidden=(16,), latent_dim=2)
    vaelib.fit(model, x[:640], epochs=2, batch_size=32, progress=False)   # 20 steps an epoch
    assert looks == [2, 2, 2]                        # after step 8 and after each epoch, up to the 2 it had
    looks.clear()
    assert seen[:train.FIRST_LOOK_AT_LOAD] == [2] * train.FIRST_LOOK_AT_LOAD and set(seen[8:]) == {1}
    assert torch.get_num_threads() == 2              # given back when fit returns
    seen.clear()
    vaelib.fit(model, x[:640], epochs=1, batch_size=32, progress=False)
    assert set(seen) == {1}                          # right after: starts from where the last fit ended
    looks.clear()
    vaelib.fit(model, x[:640], epochs=1, batch_size=32, progress=False, threads=1)
    assert looks == [] and torch.get_num_threads() == 2   # a fixed count: the load is not looked at


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_fit_threads_must_be_a_whole_number(mnist, threads):
    x, _ = mnist
    with pytest.raises(ValueError, match="threads must be None"):
        vaelib.fit(small_vae(), x[:10], threads=threads, progress=False)
