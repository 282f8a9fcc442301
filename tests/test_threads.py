"""vaelib.threads: the thread count respects the CPUs a process may use; idle threads sleep."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaelib import threads

ROOT = Path(__file__).resolve().parents[1]


def python(code, **env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.split()


SUITE = "PASSIVE, GOMP_SPINCOUNT=1000"


def test_vaelib_leaves_the_wait_alone_in_either_import_order():
    # then, in the same process, a policy set after torch loaded: too late for OpenMP, and wait_policy says so
    for first in ("import vaelib, torch", "import torch, vaelib"):
        code = (f"{first}; import os; print('OMP_WAIT_POLICY' in os.environ); print(vaelib.threads.wait_policy()); "
                "os.environ['OMP_WAIT_POLICY'] = 'passive'; print(vaelib.threads.wait_policy())")
        assert python(code) == ["False", "default", "default"]
    # (a policy set in the process before torch loads is reported as in force: the affinity test below)


def test_a_policy_or_spin_count_chosen_by_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert threads.set_wait_policy() == "ACTIVE", "an ACTIVE policy must not be overridden by a spin count"
    assert "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "50000")
    assert threads.set_wait_policy() == "PASSIVE, GOMP_SPINCOUNT=50000"


def test_the_set_up_cell_leaves_threads_to_vaelib():
    from sync_launch_cells import repository_url, setup_source

    cell = setup_source(repository_url())
    assert len(cell.splitlines()) <= 3 and "OMP" not in cell and "SPINCOUNT" not in cell


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_policy_set_before_torch_loads_is_in_force_and_cpus_follow_the_affinity_mask():
    report = "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); import torch, vaelib; " \
             "print(vaelib.threads.available_cpus(), vaelib.threads.default_threads(), vaelib.threads.wait_policy())"
    # set in the process, before torch loads (a cell of the user's own): reported as in force
    assert python(f"import os; os.environ['OMP_WAIT_POLICY'] = 'passive'; {report}") == ["1", "1", "PASSIVE"]
    # set before Python starts: the environment tests/conftest.py gives this test run, which nbval's kernels inherit
    kernel = subprocess.run([sys.executable, "-c", f"import os; {report}"], cwd=ROOT, env=os.environ,
                            capture_output=True, text=True, check=True)
    assert kernel.stdout.split() == ["1", "1", *SUITE.split()]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_least_along_the_path(tmp_path):
    write(tmp_path / "proc", "0::/user/job\n")
    write(tmp_path / "fs" / "user" / "job" / "cpu.max", "150000 100000\n")
    write(tmp_path / "fs" / "user" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == 1.5
    write(tmp_path / "fs" / "user" / "cpu.max", "50000 100000\n")  # the parent's limit binds
    assert threads.cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == 0.5


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    write(tmp_path / "proc", "4:memory:/x\n3:cpu,cpuacct:/binder\n")
    write(tmp_path / "fs" / "cpu,cpuacct" / "binder" / "cpu.cfs_quota_us", "100000\n")
    write(tmp_path / "fs" / "cpu,cpuacct" / "binder" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == 1.0
    write(tmp_path / "fs" / "cpu,cpuacct" / "binder" / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") is None
    assert threads.cgroup_cpu_quota(tmp_path / "fs", tmp_path / "missing") is None


def test_configure_threads_never_exceeds_the_available_cpus(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(threads, "available_cpus", lambda: 1)
        assert threads.configure_threads(2) == 1 == torch.get_num_threads()
        assert threads.configure_threads() == 1
        monkeypatch.setattr(threads, "available_cpus", lambda: 64)
        assert threads.configure_threads() == threads.MAX_THREADS == torch.get_num_threads()
        assert threads.configure_threads(4) == 4
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert threads.configure_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_idle_cpus_is_what_other_processes_leave(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    # readings: (wall s, machine busy CPU-s, own CPU-s); over 1 s the machine was busy 1.8 CPU-s, we 0.8
    assert threads.idle_cpus((0.0, 10.0, 5.0), (1.0, 11.8, 5.8)) == pytest.approx(1.0)
    assert threads.idle_cpus((0.0, 10.0, 5.0), (1.0, 11.9, 5.9)) == pytest.approx(1.0)
    assert threads.idle_cpus((0.0, 10.0, 5.0), (1.0, 11.6, 5.6)) == pytest.approx(1.0)
    assert threads.idle_cpus((0.0, 10.0, 5.0), (1.0, 10.1, 5.1)) == pytest.approx(2.0)   # a quiet machine
    assert threads.idle_cpus((0.0, 10.0, 5.0), (1.0, 13.0, 5.0)) == 0.0                  # never negative
    assert threads.idle_cpus(None, (1.0, 11.0, 5.0)) is None
    assert threads.idle_cpus((0.0, 10.0, 5.0), (0.001, 10.0, 5.0)) is None              # too short to tell
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 64)      # a container on a large host: not our load
    assert threads.idle_cpus((0.0, 10.0, 5.0), (1.0, 11.8, 5.8)) is None


def test_threads_follow_the_idle_cpus_between_one_and_the_most(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    quiet, busy = (1.0, 10.3, 5.2), (1.0, 11.9, 5.0)     # others used 0.1 and 1.9 CPUs of 2
    start = (0.0, 10.0, 5.0)
    assert threads.threads_for_load(start, quiet, most=2) == 2
    assert threads.threads_for_load(start, busy, most=2) == 1
    assert threads.threads_for_load(start, (1.0, 10.9, 5.0), most=2) == 1   # 1.1 CPUs idle: one thread
    assert threads.threads_for_load(start, quiet, most=1) == 1
    assert threads.threads_for_load(None, quiet, most=2) == 2               # load unknown: as before


def test_cpu_clock_reads_this_machine():
    reading = threads.cpu_clock()
    if reading is None:
        pytest.skip("no /proc/stat here")
    x, begun = 0, time.perf_counter()
    while time.perf_counter() - begun < 0.1:   # some CPU time of our own
        x += sum(i * i for i in range(1000))
    later = threads.cpu_clock()
    assert x > 0 and later[0] > reading[0] and later[1] >= reading[1] and later[2] > reading[2]
    idle = threads.idle_cpus(reading, later)
    assert idle is None if (os.cpu_count() or 1) > threads.available_cpus() else 0 <= idle <= threads.available_cpus()
