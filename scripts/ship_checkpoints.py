"""Ship the checkpoints the notebooks and scripts train: check them against the registry, copy them into vaelib/assets/.

Usage: python scripts/ship_checkpoints.py [--dry-run] [--readme] [name ...]   (default: every shipped model)

The models to ship are listed once, in vaelib.pretrained.PRETRAINED: each with its class, config,
data, recipe and what makes it (``made_by``: notebooks 01 and 05 save ae_2d.pt, vae_2d.pt and
vae_20d.pt; scripts/train_conv_checkpoints.py saves the three models of 08_conv_vae). Run those
first, so that notebooks/checkpoints/<name>.pt exist. Each file is loaded with weights_only=True
and must hold the model the registry promises; only when all pass are they copied to
vaelib/assets/<name>.pt (a file holding the same model is left alone). The shipped files are
committed, so their sizes are printed (float16 weights keep them small).
``--readme`` rewrites the README's table of shipped models from the registry.
"""

import argparse

import torch
from repo import ROOT

from vaelib.checkpoints import atomic_write
from vaelib.pretrained import PRETRAINED, load_as, markdown_table, pretrained_path

SOURCE = ROOT / "notebooks" / "checkpoints"
MAX_TOTAL_BYTES = 12 * 1024 * 1024  # committed files: keep them small (float16; 8 MB for the models of 14 notebooks)


def check(name):
    """Load notebooks/checkpoints/<name>.pt and check it is the promised model; return its path and the model."""
    path = SOURCE / f"{name}.pt"
    if not path.exists():
        raise SystemExit(f"{path.relative_to(ROOT)} is missing: run {PRETRAINED[name].made_by} first")
    try:
        return path, load_as(path, name)
    except ValueError as e:
        raise SystemExit(f"{name}: {e}") from e


def same_checkpoint(a, b):
    """True if two checkpoint files hold the same model: class, config, extras and every tensor."""
    ca, cb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    sa, sb = ca["state_dict"], cb["state_dict"]
    return ({k: v for k, v in ca.items() if k != "state_dict"} == {k: v for k, v in cb.items() if k != "state_dict"}
            and sa.keys() == sb.keys()
            and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa))


def write_readme_table():
    """Replace the README's table of shipped models (the one whose header names "made by") with the registry's."""
    readme = ROOT / "README.md"
    lines = readme.read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| name | model |"))
    end = next(i for i in range(start, len(lines) + 1) if i == len(lines) or not lines[i].startswith("|"))
    text = "\n".join(lines[:start] + markdown_table().split("\n") + lines[end:])
    with atomic_write(readme) as f:
        f.write(text.encode())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="check the checkpoints, copy nothing")
    parser.add_argument("--readme", action="store_true", help="only rewrite the README's table of shipped models")
    parser.add_argument("names", nargs="*", help=f"which to ship, of {', '.join(PRETRAINED)} (default: all)")
    args = parser.parse_args(argv)
    if args.readme:
        return write_readme_table()
    unknown = sorted(set(args.names) - set(PRETRAINED))
    if unknown:
        parser.error(f"{', '.join(unknown)} not in vaelib.pretrained.PRETRAINED; choose from {', '.join(PRETRAINED)}")

    checked = {name: check(name) for name in args.names or PRETRAINED}      # all checks before any copy
    total = 0
    for name, (path, model) in checked.items():
        target = pretrained_path(name)
        size = path.stat().st_size
        total += size
        unchanged = target.exists() and same_checkpoint(path, target)   # then leave the file alone
        if not args.dry_run and not unchanged:
            with atomic_write(target) as f:
                f.write(path.read_bytes())
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
