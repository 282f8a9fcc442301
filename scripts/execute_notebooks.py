"""Re-execute notebooks in place, top to bottom, as "Restart kernel and run all" would.

Usage: python scripts/execute_notebooks.py [--time-only] [notebooks/NN_name.ipynb ...]   (default: all)
       python scripts/execute_notebooks.py --suite

With --time-only the notebooks are not rewritten: they run as the README's test command runs them, one
after another (-n 0, so that each one's seconds are its own),
under `pytest` with nbval (strict: every output compared with the stored one, in a fresh kernel each,
from notebooks/), and the seconds each took are printed with pytest's own total (how LECTURERS.md's
run times were measured; try it on your own laptop). The notebooks that save a model write it to
notebooks/checkpoints/, as they do under pytest.

With --suite it runs the README's test command itself (`pytest`, two processes side by side) and prints
how long the whole run took and where the time went, part by part: the seconds of each part's tests
(setup, call and teardown, summed over both processes, so the parts add up to about twice the wall
time), and the slowest tests.

The lessons' launch cells are synced first (scripts/sync_launch_cells.py), each notebook runs in a fresh
kernel from its own folder, and no per-run timing metadata is stored, so a re-run that changes
nothing leaves the file unchanged (clean diffs).
"""

import re
import subprocess
import sys
import time
from collections import Counter

from repo import ROOT, notebooks
from sync_launch_cells import repository_url, sync_notebook


def execute(path, timeout=600):
    # Imported here: --time-only and --suite only start pytest, and need neither nbconvert nor torch.
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

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
    _, seconds = seconds_by_part(out.stdout)  # per notebook: all its cells
    for path in paths:
        print(f"{path.name}: {seconds[str(path.relative_to(ROOT))]:.1f} s")
    print(f"total: {sum(seconds.values()):.1f} s; pytest: {pytest_summary(out.stdout)}; "
          f"{wall:.1f} s with pytest's own start")
    if out.returncode:
        print(out.stdout[-3000:] + out.stderr[-2000:])
    return out.returncode


#: The parts of the README's `pytest`, by the path of a test's file (first match wins).
PARTS = [("lessons (notebooks/, strict nbval)", "notebooks/"),
         ("answers (answers/, strict nbval)", "answers/"),
         ("browser: live explorer, RISE decks, every slide at 1280 x 720", "tests/test_browser.py"),
         ("interruption: Ctrl-C and SIGTERM leave no process", "tests/test_interrupt.py"),
         ("unit tests (the rest of tests/)", "tests/")]


def seconds_by_part(durations):
    """From pytest's ``--durations=0`` report (text): ({part: seconds}, {test: seconds}), each test's setup,
    call and teardown summed."""
    parts, tests = Counter(), Counter()
    for line in durations.splitlines():
        found = re.match(r"([\d.]+)s (?:setup|call|teardown)\s+(\S+)", line)
        if found:
            test = found.group(2).split("::")[0] if ".ipynb::" in found.group(2) else found.group(2)  # a notebook's cells: the notebook
            part = next((name for name, prefix in PARTS if test.startswith(prefix)), "other")
            parts[part] += float(found.group(1))
            tests[test] += float(found.group(1))
    return parts, tests


def pytest_summary(output):
    """pytest's last line of counts ("12 passed in 3.45s"), or "?"."""
    summary = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return summary[-1].strip("= ") if summary else "?"


def suite():
    """Run the README's `pytest` and print its wall time and the seconds of each part (PARTS)."""
    command = [sys.executable, "-m", "pytest", "-q", "--durations=0"]
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    parts, tests = seconds_by_part(out.stdout)
    print(f"pytest: {pytest_summary(out.stdout)}; {wall:.0f} s in all, with pytest's own start")
    print("seconds of each part's tests, summed over the two processes:")
    for name, _ in PARTS:
        print(f"  {parts[name]:6.0f} s  {name}")
    print("slowest tests (a notebook: all its cells):")
    for test, seconds in tests.most_common(8):
        print(f"  {seconds:6.1f} s  {test}")
    if out.returncode:
        print(out.stdout[-3000:] + out.stderr[-2000:])
    return out.returncode


def main(args):
    if args == ["--suite"]:
        return suite()
    paths = [path.resolve() for path in notebooks([a for a in args if a != "--time-only"])]
    if "--time-only" in args:
        return time_only(paths)
    from vaelib.threads import set_wait_policy  # imports torch: only here, where notebooks are rewritten

    set_wait_policy()  # as the test suite (tests/conftest.py): the kernels started here run beside other work
    total = 0.0
    for path in paths:
        seconds = execute(path)
        total += seconds
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
