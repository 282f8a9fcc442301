"""vaelib.threads: the thread count respects the CPUs a process may use; idle threads sleep."""

import os
import subprocess
import sys
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


VAELIB = "PASSIVE, GOMP_SPINCOUNT=1000"


def test_importing_vaelib_before_torch_sets_the_wait_settings_and_after_cannot():
    code = "import vaelib, os; print(os.environ['OMP_WAIT_POLICY'], os.environ['GOMP_SPINCOUNT'], " \
           "os.environ['KMP_BLOCKTIME']); print(vaelib.threads.wait_policy())"
    assert python(code) == ["PASSIVE", "1000", "1", *VAELIB.split()]
    # torch first: too late for OpenMP, and wait_policy says so
    assert python("import torch, vaelib; print(vaelib.threads.wait_policy())") == ["default"]
    # a policy set in the process before torch loaded (a cell of the user's own) is reported as in force
    code = "import os; os.environ['OMP_WAIT_POLICY'] = 'passive'; import torch, vaelib; print(vaelib.threads.wait_policy())"
    assert python(code) == ["PASSIVE"]


def test_a_policy_or_spin_count_chosen_by_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert threads.set_wait_policy() == "ACTIVE", "an ACTIVE policy must not be overridden by a spin count"
    assert "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "50000")
    assert threads.set_wait_policy() == "PASSIVE, GOMP_SPINCOUNT=50000"


def test_this_test_run_has_vaelibs_wait_settings():
    assert threads.wait_policy() == VAELIB, "tests/conftest.py sets them before torch is imported"


def test_binders_start_script_sets_the_same_as_vaelib():
    """Binder's `start` gives every kernel vaelib's settings, whatever the kernel imports first."""
    report = "import torch, vaelib; print(vaelib.threads.wait_policy())"
    out = subprocess.run([str(ROOT / "start"), sys.executable, "-c", report],
                         env={k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == VAELIB


def test_the_set_up_cell_leaves_threads_to_vaelib():
    from sync_launch_cells import repository_url, setup_source

    cell = setup_source(repository_url())
    assert len(cell.splitlines()) <= 3 and "OMP" not in cell and "SPINCOUNT" not in cell


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_available_cpus_follows_the_affinity_mask_and_a_policy_set_before_python_starts_counts():
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); import torch, vaelib; " \
           "print(vaelib.threads.available_cpus(), vaelib.threads.default_threads(), vaelib.threads.wait_policy())"
    assert python(code, OMP_WAIT_POLICY="passive") == ["1", "1", "PASSIVE"]
    assert python(code, OMP_WAIT_POLICY="passive", GOMP_SPINCOUNT="1000") == ["1", "1", *VAELIB.split()]


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
