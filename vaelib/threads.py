"""How many CPU threads torch uses, and how its idle threads wait.

torch runs its CPU kernels on OpenMP threads. Between two parallel regions an idle OpenMP thread
*spins* by default (GNU OpenMP, which Linux builds of torch use: some 300,000 polls, about 3 ms,
before it sleeps). On a machine of its own that saves the cost of waking a sleeping thread; beside
another busy process it is a disaster: the spinning thread holds the core the other process (or
torch's own other thread) needs. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) never collapses,
but a training step runs hundreds of short parallel regions and pays a wake-up in each, so a
machine of its own runs small models almost half as fast.

So vaelib lets idle threads spin briefly and then sleep: ``GOMP_SPINCOUNT=1000`` (about 10
microseconds of polling; GNU OpenMP lets it override the policy), ``KMP_BLOCKTIME=1`` for LLVM's
OpenMP (macOS builds of torch; it does not read ``GOMP_SPINCOUNT``, and 1 ms is the shortest spin it
takes in every version, against its default of 200 ms), and ``OMP_WAIT_POLICY=PASSIVE`` for the
runtimes that read neither. Only GNU OpenMP was measured (Linux); the LLVM setting is not. ``benchmarks/contention.py`` prints, side by
side, the seconds per training epoch alone and beside one busy process for these settings, for
spinning and sleeping threads, and for one thread. It uses at most two threads, never more than the
CPUs this process may really use (its CPU affinity and its cgroup CPU quota, as on Binder or in a
container, where ``os.cpu_count()`` shows the whole host).

OpenMP reads these variables once, when torch's shared libraries load (``import torch``); setting
them later changes nothing. They are set, unless you chose ``OMP_WAIT_POLICY`` yourself:

* when ``vaelib`` is imported before ``torch`` (``vaelib/__init__.py`` imports this module first; the
  notebooks import vaelib before torch);
* by the test suite (``tests/conftest.py``), so every notebook kernel the tests start inherits them;
* on Binder by the ``start`` script.

Elsewhere, set them yourself before starting Python or Jupyter:
``export OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=1000 KMP_BLOCKTIME=1``.

How threads wait never changes a result. The thread count does (it splits float sums differently),
so it depends only on the machine, never on the load: results stay bit-identical run to run on one
machine, and other thread counts change the last digits as other CPUs do, which the notebooks'
stated tolerances cover.
"""

import math
import os
import sys

#: What vaelib asks OpenMP for (see the module docstring): any OpenMP runtime lets idle threads sleep;
#: GNU OpenMP first lets them poll this many times (its GOMP_SPINCOUNT takes precedence over the policy).
WAIT_POLICY = "PASSIVE"
SPIN_COUNT = "1000"
#: LLVM's OpenMP (libomp, macOS): milliseconds an idle thread spins before it sleeps (its default: 200).
BLOCK_TIME = "1"
#: The most threads vaelib uses by default: small MLPs gain little from more, and two threads give
#: the same results on every machine with at least two CPUs.
MAX_THREADS = 2

#: If torch loaded before vaelib, the wait settings as they were then (vaelib's own come too late for it).
_BEFORE_VAELIB = dict(os.environ) if "torch" in sys.modules else None


def set_wait_policy():
    """Put vaelib's wait settings in the environment unless ``OMP_WAIT_POLICY`` is already set;
    return :func:`wait_policy`'s description of what is in force for OpenMP runtimes started from now on.

    It only takes effect if torch has not been imported yet in this process, and it is inherited
    by processes started from this one (notebook kernels, workers). A ``GOMP_SPINCOUNT`` you set
    is kept.
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
        os.environ.setdefault("KMP_BLOCKTIME", BLOCK_TIME)
    return _describe(os.environ)


def _describe(environment):
    """``"PASSIVE, GOMP_SPINCOUNT=1000"``-style text for the wait settings in ``environment``."""
    policy = environment.get("OMP_WAIT_POLICY")
    text = policy.upper() if policy else "default"
    spin = environment.get("GOMP_SPINCOUNT")
    return f"{text}, GOMP_SPINCOUNT={spin}" if spin else text


def wait_policy():
    """How torch's OpenMP threads wait: ``"PASSIVE, GOMP_SPINCOUNT=1000"`` (vaelib's settings),
    ``"PASSIVE"``, ``"ACTIVE"`` or ``"default"`` (nothing set: spin about 3 ms, then sleep).

    OpenMP read the environment when torch loaded. If vaelib ran first, that is what it set. If torch
    was imported first, it is the environment as vaelib found it: what the shell or an earlier cell put
    there before torch loaded, without vaelib's own settings (which then only reach child processes).
    """
    return _describe(os.environ if _BEFORE_VAELIB is None else _BEFORE_VAELIB)


def _read_quota(directory):
    """CPUs allowed by the cgroup directory's own limit (v2 ``cpu.max`` or v1 CFS files), or None."""
    try:
        with open(os.path.join(directory, "cpu.max")) as f:  # v2: "max 100000" or "150000 100000"
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(directory, "cpu.cfs_quota_us")) as f:  # v1: -1 when unlimited
            quota = int(f.read())
        with open(os.path.join(directory, "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def cgroup_cpu_quota(root="/sys/fs/cgroup", proc_cgroup="/proc/self/cgroup"):
    """The CPU quota of this process's cgroup and its ancestors, in CPUs (e.g. 1.5), or None if none."""
    try:
        with open(proc_cgroup) as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f if line.count(":") >= 2]
    except OSError:
        return None
    quotas = []
    for _, controllers, path in entries:
        if controllers == "":  # cgroup v2: one unified tree
            bases = [root, os.path.join(root, "unified")]
        elif "cpu" in controllers.split(","):  # cgroup v1: the tree of the cpu controller
            bases = [os.path.join(root, controllers), os.path.join(root, "cpu"), os.path.join(root, "cpu,cpuacct")]
        else:
            continue
        for base in bases:
            directory = os.path.join(base, path.lstrip("/"))
            if not os.path.isdir(directory):
                continue
            while True:  # a parent's limit applies to its children too
                quota = _read_quota(directory)
                if quota is not None:
                    quotas.append(quota)
                if os.path.samefile(directory, base):
                    break
                directory = os.path.dirname(directory)
            break
    return min(quotas) if quotas else None


def available_cpus():
    """How many CPUs this process may really use: the least of the CPU count, the CPUs in its
    affinity mask (``taskset``, ``docker --cpuset-cpus``) and its cgroup CPU quota (Binder,
    ``docker --cpus``, Kubernetes limits), rounded down, and at least 1."""
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota()
    if quota is not None:
        counts.append(max(1, math.floor(quota)))
    return max(1, min(counts))


def default_threads():
    """The thread count vaelib uses: ``$OMP_NUM_THREADS`` if you set it, else
    ``min(MAX_THREADS, available_cpus())``."""
    try:
        chosen = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        chosen = 0
    return chosen if chosen > 0 else min(MAX_THREADS, available_cpus())


def configure_threads(threads=None):
    """Set torch's CPU thread count; return it.

    Args:
        threads: ``None`` for :func:`default_threads`; a number is an upper bound: torch gets
            ``min(threads, available_cpus())``, since threads beyond the CPUs this process may use
            only wait for each other.
    """
    import torch

    count = default_threads() if threads is None else max(1, min(int(threads), available_cpus()))
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


set_wait_policy()
