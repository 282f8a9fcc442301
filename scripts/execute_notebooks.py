"""Re-execute notebooks in place, top to bottom, as "Restart kernel and run all" would.

Usage: python scripts/execute_notebooks.py [--time-only] [notebooks/NN_name.ipynb ...]   (default: all)

With --time-only nothing is written: each notebook runs in a scratch folder and only its run time
is printed (how LECTURERS.md's run times were measured; try it on your own laptop).

The launch cells are synced first (scripts/sync_launch_cells.py), each notebook runs in a fresh
kernel from its own folder, and no per-run timing metadata is stored, so a re-run that changes
nothing leaves the file unchanged (clean diffs).
"""

import sys
import tempfile
import time

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor
from repo import notebooks
from sync_launch_cells import repository_url, sync_notebook


def execute(path, timeout=600):
    sync_notebook(path, repository_url())
    nb = nbformat.read(path, as_version=4)
    runner = ExecutePreprocessor(timeout=timeout, kernel_name="python3", record_timing=False)
    start = time.perf_counter()
    runner.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return seconds


def time_only(path, timeout=600):
    """Run a copy of the notebook in a scratch folder (nothing in the repository changes); seconds."""
    nb = nbformat.read(path, as_version=4)
    runner = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        runner.preprocess(nb, {"metadata": {"path": scratch}})
        return time.perf_counter() - start


def main(args):
    timing = "--time-only" in args
    paths = [a for a in args if a != "--time-only"]
    total = 0.0
    for path in [p.resolve() for p in notebooks(paths)]:
        seconds = time_only(path) if timing else execute(path)
        total += seconds
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    print(f"total: {total:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
