"""An interrupted browser test leaves nothing running: no JupyterLab server, no kernel, no Chromium.

Runs tests/test_browser.py's explorer test in a pytest of its own (in a worker process, as the README's
`pytest` runs it: pytest-xdist's controller passes a SIGTERM on to its workers), waits until its JupyterLab server,
a kernel and Chromium are all up, then interrupts it as a lecturer's Ctrl-C does (SIGINT to the whole
process group, as a terminal sends it) or as ``timeout`` and ``kill`` do (SIGTERM to pytest alone), and
checks that every process that was running under it has ended once pytest has exited. Linux only (the
process tree is read from /proc); skipped without Chromium or Playwright, like the browser tests.

Not part of the README's `pytest`: each case starts a whole test run of its own (about 80 s of the two
processes' time for both, which a lecturer checking the series before class does not need). Run them with
`pytest -m interruption`; CI does, after the README's command.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from check_slides import CHROMIUM, process_tree

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed (pip install playwright)")
pytestmark = [pytest.mark.interruption,  # run apart from the README's `pytest`: `pytest -m interruption`
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")]

UP_S = 300  # for the server, a kernel and Chromium to start on a loaded 2-core machine
EXIT_S = 120  # for pytest to stop them all and exit


def command_line(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid, started):
    """Whether process ``pid`` is still the one seen running (same start time) and is not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == started


def start_time(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_browser_test_leaves_no_process(how, tmp_path):
    pytest_run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests/test_browser.py", "-k", "latent_explorer", "-n", "1"],
        cwd=ROOT, stdout=open(tmp_path / "pytest.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + UP_S
        while True:
            tree = {pid: command_line(pid) for pid in process_tree(pytest_run.pid)[1:]}
            up = {what: any(what in line for line in tree.values()) for what in ("jupyterlab", "ipykernel", "chromium")}
            if all(up.values()):
                break
            assert pytest_run.poll() is None, f"pytest ended first:\n{(tmp_path / 'pytest.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not all up in {UP_S} s: {up}"
            time.sleep(0.5)
        seen = {pid: start_time(pid) for pid in process_tree(pytest_run.pid)[1:]}

        if how == "ctrl-c":
            os.killpg(pytest_run.pid, signal.SIGINT)  # what a terminal sends to the foreground process group
        else:
            pytest_run.send_signal(signal.SIGTERM)
        pytest_run.wait(EXIT_S)
    finally:
        if pytest_run.poll() is None:
            os.killpg(pytest_run.pid, signal.SIGKILL)
            pytest_run.wait()

    survivors = {pid: command_line(pid)[:120] for pid, started in seen.items() if started and alive(pid, started)}
    for pid in survivors:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    print(f"{how}: pytest exited with {pytest_run.returncode}; {len(seen)} processes under it had started")
    assert not survivors, f"left running after {how}: {survivors}"
