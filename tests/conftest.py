"""Set-up shared by the whole suite: the unit tests in tests/ and the notebooks nbval re-executes.

pytest loads this file when tests/ is among the paths it collects, as the README's plain `pytest`
does. To test one notebook with the same set-up, name this file as a plugin:
    python -m pytest -p tests.conftest notebooks/05_training.ipynb
"""

import os
import signal
import sys
import threading
import time
from pathlib import Path

#: The repository's root and its notebooks in order, for the tests that read files of the repository.
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# The suite runs notebooks beside each other and beside CI's other work: let OpenMP's idle threads spin
# only briefly, then sleep, in every process started from here (pytest-xdist's workers, the notebook kernels
# nbval starts: they inherit the environment before they import torch; this process loaded torch with the
# import below). vaelib itself leaves the wait alone (see vaelib/threads.py).
try:
    from vaelib.threads import set_wait_policy
    set_wait_policy()
except Exception:  # a broken vaelib is reported by the tests that use it, not by the set-up
    pass

# Trained figures: nbval compares a cell that carries "tolerance" metadata within its bands (tests/tolerance.py).
try:
    from tolerance import install as install_tolerance  # pytest puts tests/ on sys.path for this conftest
except ImportError:  # loaded as the plugin tests.conftest
    from tests.tolerance import install as install_tolerance
install_tolerance()

#: Seconds nbval waits for each further output message of a cell once the cell has finished.
#: nbval 0.11 fixes it at 5 s (IPyNbCell.output_timeout, set in its __init__; --nbval-cell-timeout does
#: not change it), and on a loaded machine a training cell failed with "Timeout of 5 seconds exceeded
#: waiting for output". A cell that really hangs is still caught by --nbval-cell-timeout.
NBVAL_OUTPUT_WAIT = 60


def pytest_collection_modifyitems(config, items):
    """Give every nbval cell NBVAL_OUTPUT_WAIT seconds to deliver each output message."""
    for item in items:
        if type(item).__module__.startswith("nbval") and hasattr(item, "output_timeout"):
            item.output_timeout = max(item.output_timeout, NBVAL_OUTPUT_WAIT)


#: Seconds the xdist controller, on SIGTERM, waits for its workers to stop what they started.
WORKER_CLEANUP_S = 60


def pytest_configure(config):
    """SIGTERM and SIGHUP (``timeout``, ``kill``, a closed terminal) stop a test run as Ctrl-C does, so that
    every fixture's ``finally`` stops its JupyterLab server, kernels and browser. With the README's
    ``pytest`` in two processes (pytest-xdist), the controller passes the signal on to its workers first:
    they run the tests and hold the servers; a terminal's Ctrl-C reaches them all by itself."""
    if threading.current_thread() is not threading.main_thread():
        return
    controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if str(ROOT / "scripts") not in sys.path:  # pyproject.toml puts it there, unless another rootdir is used
        sys.path.insert(0, str(ROOT / "scripts"))
    from check_slides import children_by_parent

    def interrupt(signum, frame):
        if controller:  # pass it on, then give the workers time to stop their servers, kernels and browsers
            workers = children_by_parent().get(os.getpid(), [])
            for pid in workers:
                try:
                    os.kill(pid, signum)
                except OSError:
                    pass
            deadline = time.monotonic() + WORKER_CLEANUP_S
            while time.monotonic() < deadline and any(children_by_parent().get(pid) for pid in workers):
                time.sleep(0.2)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupt)
