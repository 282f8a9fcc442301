"""Ship the checkpoints the notebooks train: copy them into vaelib/assets/ for load_pretrained.

Usage: python scripts/ship_checkpoints.py [--dry-run]

First make them in notebooks/checkpoints/: run notebooks 01 and 05 (python scripts/execute_notebooks.py
notebooks/01_autoencoder.ipynb notebooks/05_training.ipynb), which save ae_2d.pt (01) and vae_2d.pt,
vae_20d.pt (05), and python scripts/train_conv_checkpoints.py, which saves the three models of
08_conv_vae (conv_vae_mnist.pt, conv_vae_fashion.pt, mlp_vae_fashion.pt; a minute or two on a CPU). Each
file is loaded with vaelib.load_checkpoint (weights_only=True) and must hold the model that
vaelib.pretrained.PRETRAINED promises; only when all pass are they copied to
vaelib/assets/<name>.pt. Nothing is copied if any check fails. The shipped files are committed,
so their sizes are printed (float16 weights keep them small).
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "notebooks" / "checkpoints"

# What each shipped name must be: the class and the config values that define the architecture.
EXPECTED = {
    "ae_2d": ("Autoencoder", {"sizes": [784, 256, 2], "likelihood": "bernoulli"}),
    "vae_2d": ("VAE", {"input_dim": 784, "hidden": [256], "latent_dim": 2, "likelihood": "bernoulli"}),
    "vae_20d": ("VAE", {"input_dim": 784, "hidden": [400], "latent_dim": 20, "likelihood": "bernoulli"}),
    "conv_vae_mnist": ("ConvVAE", {"latent_dim": 20, "channels": [32, 64], "likelihood": "bernoulli"}),
    "conv_vae_fashion": ("ConvVAE", {"latent_dim": 20, "channels": [32, 64], "likelihood": "bernoulli"}),
    "mlp_vae_fashion": ("VAE", {"input_dim": 784, "hidden": [400], "latent_dim": 20, "likelihood": "bernoulli"}),
}
# What makes each file in notebooks/checkpoints/.
MADE_BY = {"ae_2d": "notebooks/01_autoencoder.ipynb", "vae_2d": "notebooks/05_training.ipynb",
           "vae_20d": "notebooks/05_training.ipynb", "conv_vae_mnist": "scripts/train_conv_checkpoints.py",
           "conv_vae_fashion": "scripts/train_conv_checkpoints.py",
           "mlp_vae_fashion": "scripts/train_conv_checkpoints.py"}
MAX_TOTAL_BYTES = 6 * 1024 * 1024  # committed files: keep them small


def check(name):
    """Load notebooks/checkpoints/<name>.pt and check it is the promised model; return its path."""
    import vaelib

    path = SOURCE / f"{name}.pt"
    if not path.exists():
        raise SystemExit(f"{path.relative_to(ROOT)} is missing: run {MADE_BY[name]} first")
    cls, config = EXPECTED[name]
    try:
        model = vaelib.load_checkpoint(path, expect=config)
    except ValueError as e:
        raise SystemExit(f"{name}: {e}") from e
    if type(model).__name__ != cls:
        raise SystemExit(f"{name}: {path} holds a {type(model).__name__}, expected a {cls}")
    return path, model


def same_checkpoint(a, b):
    """True if two checkpoint files hold the same model: class, config, extras and every tensor."""
    import torch

    ca, cb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    sa, sb = ca["state_dict"], cb["state_dict"]
    return ({k: v for k, v in ca.items() if k != "state_dict"} == {k: v for k, v in cb.items() if k != "state_dict"}
            and sa.keys() == sb.keys()
            and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="check the checkpoints, copy nothing")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from vaelib.pretrained import PRETRAINED, pretrained_path

    if set(EXPECTED) != set(PRETRAINED):
        raise SystemExit(f"this script ships {sorted(EXPECTED)} but vaelib.pretrained.PRETRAINED "
                         f"names {sorted(PRETRAINED)}: update EXPECTED")
    checked = {name: check(name) for name in EXPECTED}      # all checks before any copy

    total = 0
    for name, (path, model) in checked.items():
        target = pretrained_path(name)
        size = path.stat().st_size
        total += size
        unchanged = target.exists() and same_checkpoint(path, target)   # then leave the file alone
        if not args.dry_run and not unchanged:
            tmp = target.with_name(f".{target.name}.part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        state = "unchanged" if unchanged else ("would update" if args.dry_run else "updated")
        test_loss = model.extra.get("test_loss")
        print(f"{name:16s} {type(model).__name__:12s} {size / 1024:6.0f} KB  test loss "
              f"{test_loss if test_loss is not None else '?'}  -> {target.relative_to(ROOT)} ({state})")
    print(f"total {total / 1024:.0f} KB")
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"the checkpoints total {total / 1024 / 1024:.1f} MB, over "
                         f"{MAX_TOTAL_BYTES / 1024 / 1024:.0f} MB: save them in float16")


if __name__ == "__main__":
    main()
