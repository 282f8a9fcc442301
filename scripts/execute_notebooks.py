"""Re-execute notebooks in place, top to bottom, as "Restart kernel and run all" would.

Usage: python scripts/execute_notebooks.py [--time-only] [notebooks/NN_name.ipynb ...]   (default: all)

With --time-only the notebooks are not rewritten: they run as the README's test command runs them, one
after another (-n 0, so that each one's seconds are its own),
under `pytest` with nbval (strict: every output compared with the stored one, in a fresh kernel each,
from notebooks/), and the seconds each took are printed with pytest's own total (how LECTURERS.md's
run times were measured; try it on your own laptop). The notebooks that save a model write it to
notebooks/checkpoints/, as they do under pytest.

The lessons' launch cells are synced first (scripts/sync_launch_cells.py), each notebook runs in a fresh
kernel from its own folder, and no per-run timing metadata is stored, so a re-run that changes
nothing leaves the file unchanged (clean diffs).
"""

import re
import subprocess
import sys
import time
from collections import Counter

import nbformat
from vaelib.threads import set_wait_policy
from nbconvert.preprocessors import ExecutePreprocessor
from repo import ROOT, notebooks
from sync_launch_cells import repository_url, sync_notebook

set_wait_policy()  # as the test suite (tests/conftest.py): the kernels started here run beside other work


def execute(path, timeout=600):
    if path.parent.name == "notebooks":   # the lessons' launch cells; answers/ has none (not for students)
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


def time_only(paths):
    """Run the notebooks under pytest and nbval; print seconds per notebook (the sum of its cells'
    setup, call and teardown, as ``--durations`` reports them) and return pytest's exit code."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "-n", "0",
               *[str(path.relative_to(ROOT)) for path in paths]]
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    seconds = Counter()
    for line in out.stdout.splitlines():
        found = re.match(r"([\d.]+)s (?:setup|call|teardown)\s+(\S+?\.ipynb)::", line)
        if found:
            seconds[found.group(2)] += float(found.group(1))
    for path in paths:
        print(f"{path.name}: {seconds[str(path.relative_to(ROOT))]:.1f} s")
    summary = [line for line in out.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    print(f"total: {sum(seconds.values()):.1f} s; pytest: {summary[-1].strip('= ') if summary else '?'}; "
          f"{wall:.1f} s with pytest's own start")
    if out.returncode:
        print(out.stdout[-3000:] + out.stderr[-2000:])
    return out.returncode


def main(args):
    paths = [path.resolve() for path in notebooks([a for a in args if a != "--time-only"])]
    if "--time-only" in args:
        return time_only(paths)
    total = 0.0
    for path in paths:
        seconds = execute(path)
        total += seconds
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
