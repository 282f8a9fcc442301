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
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.split()


def test_importing_vaelib_before_torch_sets_the_wait_policy_and_after_cannot():
    assert python("import vaelib, os; print(os.environ['OMP_WAIT_POLICY'], vaelib.threads.wait_policy())") \
        == ["PASSIVE", "PASSIVE"]
    # torch first: too late for OpenMP, and wait_policy says so (it reads the initial environment)
    assert python("import torch, vaelib; print(vaelib.threads.wait_policy())") == ["default"]


def test_a_policy_chosen_by_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.set_wait_policy() == "ACTIVE"


def test_this_test_run_has_the_passive_policy():
    assert threads.wait_policy() == "PASSIVE", "tests/conftest.py sets it before torch is imported"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_available_cpus_follows_the_affinity_mask_and_a_policy_set_before_python_starts_counts():
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); import torch, vaelib; " \
           "print(vaelib.threads.available_cpus(), vaelib.threads.default_threads(), vaelib.threads.wait_policy())"
    assert python(code, OMP_WAIT_POLICY="passive") == ["1", "1", "PASSIVE"]


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
