"""Re-execute notebooks in place, top to bottom, as "Restart kernel and run all" would.

Usage: python scripts/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: all)

The launch cells are synced first (scripts/sync_launch_cells.py), each notebook runs in a fresh
kernel from its own folder, and no per-run timing metadata is stored, so a re-run that changes
nothing leaves the file unchanged (clean diffs).
"""

import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_launch_cells import ROOT, repository_url, sync_notebook  # noqa: E402


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


def main(paths):
    notebooks = [Path(p).resolve() for p in paths] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in notebooks:
        print(f"{path.name}: {execute(path):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
