"""vaelib.environment (seeding, the environment check) and vaelib.checkpoints (save, load with
weights_only=True, the one atomic write)."""

import os
import pickle
import random

import numpy as np
import pytest
import torch

import vaelib
from vaelib import checkpoints

# --- seed_everything -----------------------------------------------------------------------------

def draw():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), vaelib.VAE(hidden=(4,)).sample(2)


def test_seed_everything_repeats_everything():
    vaelib.seed_everything(0)
    first = draw()
    vaelib.seed_everything(0)
    second = draw()
    assert first[:3] == second[:3] and torch.equal(first[3], second[3])
    vaelib.seed_everything(1)
    assert draw()[:3] != first[:3]
    assert torch.get_num_threads() == min(2, vaelib.threads.available_cpus())


def test_seed_everything_can_leave_threads_alone():
    torch.set_num_threads(1)
    try:
        vaelib.seed_everything(0, threads=None)
        assert torch.get_num_threads() == 1
    finally:
        vaelib.seed_everything(0)  # back to the two threads the other tests expect


# --- checkpoints -------------------------------------------------------------------------------------

MODELS = {
    "vae": lambda: vaelib.VAE(hidden=(16,), latent_dim=3, head="logvar"),
    "ae": lambda: vaelib.Autoencoder([784, 16, 2], likelihood="gaussian"),
    "conv": lambda: vaelib.ConvVAE(latent_dim=2, channels=(4, 8)),
}


def outputs(model, x):
    with torch.no_grad():
        if isinstance(model, vaelib.VAE):
            mu, sigma = model.encode(x)
            return mu, sigma, model.decode_images(mu)
        return model.encode(x), model.reconstruct(x)


@pytest.fixture
def x():
    return torch.rand(4, 784, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checkpoint_round_trip_float32(tmp_path, x, name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    path = checkpoints.save_checkpoint(model, tmp_path / "sub" / "model.pt", test_loss=98.4, note="ok")
    assert path == tmp_path / "sub" / "model.pt" and path.exists()
    loaded = checkpoints.load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training and loaded.extra == {"test_loss": 98.4, "note": "ok"}
    for a, b in zip(outputs(model, x), outputs(loaded, x)):
        assert torch.equal(a, b)


def test_checkpoint_round_trip_float16(tmp_path, x):
    torch.manual_seed(0)
    model = vaelib.VAE(hidden=(64,), latent_dim=2).eval()
    full = checkpoints.save_checkpoint(model, tmp_path / "full.pt")
    half = checkpoints.save_checkpoint(model, tmp_path / "half.pt", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = checkpoints.load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    # exactly the model with its weights rounded to float16
    rounded = vaelib.VAE(hidden=(64,), latent_dim=2).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    for a, b in zip(outputs(rounded, x), outputs(loaded, x)):
        assert torch.equal(a, b)
    for a, b in zip(outputs(model, x), outputs(loaded, x)):  # and close to the original
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


SIDE_EFFECTS = []


def _run_on_unpickle(message):
    SIDE_EFFECTS.append(message)
    return {"class": "VAE", "config": {}, "state_dict": {}}


class Payload:
    """An object whose unpickling calls a function: what weights_only=True must refuse."""

    def __reduce__(self):
        return _run_on_unpickle, ("code ran while loading",)


def test_checkpoint_is_read_with_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(Payload(), path)
    with pytest.raises(ValueError, match="not a vaelib checkpoint readable with weights_only=True"):
        checkpoints.load_checkpoint(path)
    assert SIDE_EFFECTS == []
    with open(tmp_path / "pickled.pt", "wb") as f:  # a plain pickle, not even a torch file
        pickle.dump(Payload(), f, protocol=2)
    with pytest.raises(ValueError, match="weights_only=True"):
        checkpoints.load_checkpoint(tmp_path / "pickled.pt")
    assert SIDE_EFFECTS == []


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "expected a dict with 'class', 'config' and 'state_dict'"),
    ({"class": "VAE", "config": {}}, "expected a dict with 'class', 'config' and 'state_dict'"),
    ({"class": "ResNet", "config": {}, "state_dict": {}}, r"holds a 'ResNet'; expected one of \['Autoencoder'"),
])
def test_checkpoint_wrong_content(tmp_path, content, message):
    torch.save(content, tmp_path / "c.pt")
    with pytest.raises(ValueError, match=message):
        checkpoints.load_checkpoint(tmp_path / "c.pt")


def test_checkpoint_expect(tmp_path):
    path = checkpoints.save_checkpoint(vaelib.VAE(hidden=(8,), latent_dim=3), tmp_path / "m.pt")
    assert checkpoints.load_checkpoint(path, expect={"latent_dim": 3, "hidden": [8]}).latent_dim == 3
    with pytest.raises(ValueError, match="holds a VAE with latent_dim=3, expected latent_dim=2$"):
        checkpoints.load_checkpoint(path, expect={"latent_dim": 2})
    with pytest.raises(ValueError, match="sizes=None, expected sizes="):
        checkpoints.load_checkpoint(path, expect={"sizes": [784, 8, 3]})


def test_checkpoint_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.pt"):
        checkpoints.load_checkpoint(tmp_path / "nothing.pt")


def test_checkpoint_state_dict_of_wrong_shapes(tmp_path):
    small, big = vaelib.VAE(hidden=(8,), latent_dim=2), vaelib.VAE(hidden=(8,), latent_dim=3)
    torch.save({"class": "VAE", "config": small.config, "state_dict": big.state_dict()}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"(?s)does not match a VAE\(.*size mismatch for encoder.mu.weight"):
        checkpoints.load_checkpoint(tmp_path / "m.pt")
    state = dict(small.state_dict())
    state.pop("decoder.net.0.bias")
    torch.save({"class": "VAE", "config": small.config, "state_dict": state}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="decoder.net.0.bias"):
        checkpoints.load_checkpoint(tmp_path / "m.pt")


def test_save_checkpoint_only_vaelib_models(tmp_path):
    with pytest.raises(TypeError, match="can only save"):
        checkpoints.save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_new_files_get_the_umask_mode():
    old = os.umask(0o027)
    try:
        assert checkpoints.default_file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # reading the mode left the umask as it was
    finally:
        os.umask(old)


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = checkpoints.save_checkpoint(vaelib.VAE(hidden=(8,)), tmp_path / "m.pt", test_loss=1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no .part file left
    assert path.stat().st_mode & 0o777 == checkpoints.default_file_mode()  # not mkstemp's 0o600
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):  # a write that dies half way (disk full, Ctrl-C)
        if hasattr(f, "write"):
            f.write(b"half a file")
        else:
            with open(f, "wb") as out:
                out.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save_checkpoint(vaelib.VAE(hidden=(8,)), path, test_loss=2.0)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert path.read_bytes() == before  # the old checkpoint is untouched
    monkeypatch.undo()
    assert checkpoints.load_checkpoint(path).extra == {"test_loss": 1.0}


def test_atomic_write_all_or_nothing(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with checkpoints.atomic_write(target) as f:
        f.write(b"first")
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == checkpoints.default_file_mode()
    with pytest.raises(RuntimeError, match="half way"):
        with checkpoints.atomic_write(target) as f:
            f.write(b"second, half")
            raise RuntimeError("died half way")
    assert target.read_bytes() == b"first" and [p.name for p in target.parent.iterdir()] == ["file.bin"]


# --- check_environment --------------------------------------------------------------------------

def test_check_environment_reads_vaelibs_own_requirements(monkeypatch):
    from importlib import metadata

    report = {name: (version, advice) for name, version, advice in vaelib.check_environment()}
    required = [line.split(">=")[0] for line in metadata.requires("vaelib")]
    assert list(report) == ["python", *required, "device"]
    assert all(version is not None and advice == "" for version, advice in report.values())
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "1.0" if name == "torch" else real(name))
    torch_version, advice = dict((n, (v, a)) for n, v, a in vaelib.check_environment())["torch"]
    assert torch_version is None and advice.startswith("version 1.0 is too old: pip install -U 'torch>=")
