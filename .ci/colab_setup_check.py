"""Run a notebook's Colab set-up cell as Colab would, in an environment with Colab's versions.

    python .ci/colab_setup_check.py            (run by .ci/run in the Colab-version venv)

In one Python process, as in one Colab kernel: import what Colab preloads (torch, numpy,
ipywidgets, matplotlib, tqdm), execute the set-up cell of notebooks/00_welcome.ipynb with
``google.colab`` present and its ``%pip`` line pointed at this checkout instead of GitHub, then
``import vaelib`` and use it. Checks that
  * the cell installs vaelib and nothing else: every other installed version is unchanged
    (no torch, numpy or ipywidgets reinstall, which would need a kernel restart on Colab);
  * vaelib imports and works in the same process, without a restart.
Finally uninstalls vaelib again, so the caller can install it its own way.
"""

import importlib
import json
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed():
    return {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}


def main():
    import ipywidgets
    import matplotlib
    import numpy
    import torch
    import tqdm

    print(f"Colab-like kernel: torch {torch.__version__}, numpy {numpy.__version__}, ipywidgets "
          f"{ipywidgets.__version__}, matplotlib {matplotlib.__version__}, tqdm {tqdm.__version__}")
    assert importlib.util.find_spec("vaelib") is None or "vaelib" not in installed(), \
        "start from an environment without vaelib"
    before = installed()

    nb = json.loads((ROOT / "notebooks" / "00_welcome.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "colab-setup" in c["metadata"].get("tags", []))
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell("".join(cell["source"]))
    magics = []

    class ColabIPython:  # runs the cell's %pip line, with the GitHub URL replaced by this checkout
        def run_line_magic(self, name, line, *args):
            magics.append((name, line))
            assert name == "pip", f"unexpected magic %{name}"
            args = line.split()
            spec = next(a for a in args if a.strip('"').startswith("vaelib @ git+") or "git+" in a)
            args = [str(ROOT) if a == spec else a for a in args]
            args = [a for a in args if a.strip('"') not in ("vaelib", "@")]
            subprocess.run([sys.executable, "-m", "pip", *args], check=True)

    sys.modules["google.colab"] = types.ModuleType("google.colab")
    try:
        exec(compile(code, "colab-setup", "exec"), {"get_ipython": ColabIPython})
    finally:
        del sys.modules["google.colab"]
    assert len(magics) == 1, magics

    after = installed()
    changed = {name: (before.get(name), version) for name, version in after.items() if before.get(name) != version}
    removed = set(before) - set(after)
    assert set(changed) == {"vaelib"} and not removed, f"the set-up cell changed more than vaelib: {changed} {removed}"

    importlib.invalidate_caches()
    import vaelib  # same process: no kernel restart

    model = vaelib.VAE(latent_dim=2)
    x, _ = vaelib.load_mnist("test")
    loss = model.loss(x[:8])["loss"].mean().item()
    print(f"vaelib {vaelib.__version__} imported without a restart from {Path(vaelib.__file__).parent}; "
          f"a VAE's loss on 8 digits: {loss:.1f}; installed by the cell: {changed['vaelib'][1]}; nothing else changed")
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "vaelib"], check=True)


if __name__ == "__main__":
    main()
