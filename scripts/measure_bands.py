"""Measure how far each trained figure of a notebook moves between training seeds; write its band.

Usage: python scripts/measure_bands.py [--seeds 1 2 3 4] [--write] notebooks/NN_name.ipynb ...

Another CPU rounds float sums in another order, and over a training run of a thousand steps the
trajectory drifts as far as another seed would take it. So the spread over seeds stands in for the
spread over processors CI cannot emulate. For each seed s the notebook runs top to bottom in a fresh
kernel with every ``seed_everything(n)`` of a cell that trains (calls ``fit`` or an optimizer's
``step``) changed to ``seed_everything(n + 1000 * s)``; every other random draw stays as stored, as
it would on another CPU. Each number printed by each cell is compared with the stored one:

* the same in every run: exact (band 0);
* otherwise: band = max(largest distance from the stored figure, 3 standard deviations over the
  runs), rounded up to the printed precision.

The stored outputs must be a fresh seed-0 run (scripts/execute_notebooks.py). ``--write`` stores the
bands as each cell's ``tolerance`` metadata, which tests/tolerance.py applies under nbval. A cell
whose count of printed numbers changes from seed to seed cannot get bands: it is reported, and the
script fails until it prints a stable format. Without ``--write`` the script checks the stored bands
instead, and fails if a seed moved a figure outside its band.
"""

import argparse
import importlib.util
import json
import math
import re
import statistics
import sys

import nbformat
from vaelib.threads import set_wait_policy
from nbconvert.preprocessors import ExecutePreprocessor
from repo import ROOT, notebooks

set_wait_policy()  # as the test suite (tests/conftest.py): the kernels started here run beside other work

TRAINS = re.compile(r"\bfit\(|\.step\(|train_one_epoch\(")
SEED = re.compile(r"seed_everything\((\d+)\)")


def _tolerance_module():
    """tests/tolerance.py, which reads numbers exactly as the test hook does."""
    spec = importlib.util.spec_from_file_location("tolerance", ROOT / "tests" / "tolerance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tolerance = _tolerance_module()


def printed_numbers(cell):
    """The numbers a code cell's outputs print, as (value, decimals) in order."""
    found = []
    for out in tolerance.merge_streams(cell.get("outputs", [])):
        for _, _, text in tolerance._texts([out]):
            for start, end, value in tolerance.numbers(text):
                token = text[start:end]
                found.append((value, len(token.split(".")[1]) if "." in token else 0))
    return found


def with_seed(nb, s):
    """A copy of ``nb`` whose training cells seed ``n + 1000 * s`` instead of ``n``; and the training cells
    that have no seed to change."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    unseeded = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and TRAINS.search(cell.source):
            if not SEED.search(cell.source):
                unseeded.append(i)
            cell.source = SEED.sub(lambda m: f"seed_everything({int(m.group(1)) + 1000 * s})", cell.source)
    return nb, unseeded


def run(nb, path):
    ExecutePreprocessor(timeout=600, kernel_name="python3", record_timing=False).preprocess(
        nb, {"metadata": {"path": str(path.parent)}})
    return nb


def band(stored, runs, decimals):
    values = [stored, *runs]
    if all(v == stored for v in runs):
        return 0
    spread = max(max(abs(v - stored) for v in runs), 3 * statistics.stdev(values))
    unit = 10.0 ** -decimals
    return round(math.ceil(spread / unit - 1e-9) * unit, decimals)


def measure(path, seeds):
    """Bands per code cell index (None where the format changed), and the training cells with no seed."""
    nb = nbformat.read(path, as_version=4)
    stored = {i: printed_numbers(c) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    runs = {i: [] for i in stored}
    unseeded = []
    for s in seeds:
        variant, unseeded = with_seed(nb, s)
        done = run(variant, path)
        for i in stored:
            runs[i].append([v for v, _ in printed_numbers(done.cells[i])])
        print(f"  {path.name}: seed offset {s} done", flush=True)
    bands = {}
    for i, numbers in stored.items():
        if any(len(r) != len(numbers) for r in runs[i]):
            bands[i] = None
            continue
        bands[i] = [band(value, [r[k] for r in runs[i]], decimals) for k, (value, decimals) in enumerate(numbers)]
    return nb, bands, unseeded


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--write", action="store_true", help="store the bands as each cell's tolerance metadata")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args(argv)
    failed = False
    for path in notebooks(args.paths):
        path = path.resolve()
        nb, bands, unseeded = measure(path, args.seeds)
        for i in unseeded:
            print(f"{path.name} cell {i}: trains but seeds nothing in the cell; its spread is not measured")
        for i, cell_bands in bands.items():
            first = nb.cells[i].source.split("\n")[0][:70]
            if cell_bands is None:
                failed = True
                print(f"{path.name} cell {i} ({first}): prints another count of numbers under another seed; "
                      "print a stable format")
                continue
            stored = nb.cells[i].metadata.get("tolerance")
            if any(cell_bands):
                print(f"{path.name} cell {i} ({first}): bands {cell_bands}")
            if args.write:
                if any(cell_bands):
                    nb.cells[i].metadata["tolerance"] = cell_bands
                else:
                    nb.cells[i].metadata.pop("tolerance", None)
            elif any(cell_bands) and (stored is None or len(stored) != len(cell_bands)
                                      or any(m > b + 1e-9 for m, b in zip(cell_bands, stored))):
                failed = True
                print(f"  outside the stored bands {stored}")
        if args.write:
            nbformat.write(nb, path)
            print(f"wrote the bands of {path.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
