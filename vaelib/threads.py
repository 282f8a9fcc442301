"""How many CPU threads torch uses, and how training keeps its speed beside another busy process.

torch runs its CPU kernels on OpenMP threads, and a training step runs hundreds of short parallel
regions. Between two of them an idle OpenMP thread *spins* (GNU OpenMP, which Linux builds of torch
use: some 300,000 polls, about 3 ms, before it sleeps). On a machine of its own that is the fastest
way to wait. Beside another busy process it is a disaster: two threads on two CPUs, one of them
shared, and every region waits for the thread that lost its turn, while the spinning thread holds
the core the other process needs: measured here, an epoch took 2.9 times as long.

vaelib leaves OpenMP's waiting alone (its default is the fastest alone, whichever of torch and
vaelib is imported first) and fixes the cause instead: :func:`vaelib.fit` uses no more threads than
there are CPUs that other processes leave idle, looked at after the first steps and after every
epoch (:func:`threads_for_load`, from ``/proc/stat`` less this process's own CPU time; Linux only,
and only where this process may use every CPU of the machine, since in a container the host's
load says nothing about its own quota). Beside one busy process on two CPUs it trains on one
thread, which never waits for another. ``benchmarks/contention.py`` prints, side by side, the
seconds per epoch alone and beside a busy process, in both import orders, against two threads that
ignore the load and against one thread.

The test suite is different: it runs notebooks beside each other and beside CI's other work, so
``tests/conftest.py`` calls :func:`set_wait_policy` before torch loads (idle threads poll for about
10 microseconds, then sleep), which every notebook kernel it starts inherits. Do the same yourself
on a shared server (``export OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=1000 KMP_BLOCKTIME=1`` before
starting Jupyter): it cost 13 % of speed alone here. ``KMP_BLOCKTIME`` is for LLVM's OpenMP
(macOS builds of torch), which does not read ``GOMP_SPINCOUNT``; only GNU OpenMP was measured.

How threads wait never changes a result. The thread count does (it splits float sums differently):
on a quiet machine ``fit`` always uses the same count, so seeded results are bit-identical run after
run; beside other work a run on fewer threads changes the last digits as another CPU does, which the
notebooks' stated tolerances cover. ``fit(..., threads=2)`` fixes the count whatever the load. The
count is at most two, never more than the CPUs this process may really use (its CPU affinity and its
cgroup CPU quota, as on Binder or in a container, where ``os.cpu_count()`` shows the whole host).
"""

import math
import os
import time

#: What :func:`set_wait_policy` asks OpenMP for (the test suite; see the module docstring): any OpenMP
#: runtime lets idle threads sleep; GNU OpenMP first lets them poll this many times (its GOMP_SPINCOUNT
#: takes precedence over the policy).
WAIT_POLICY = "PASSIVE"
SPIN_COUNT = "1000"
#: LLVM's OpenMP (libomp, macOS): milliseconds an idle thread spins before it sleeps (its default: 200).
BLOCK_TIME = "1"
#: The most threads vaelib uses by default: small MLPs gain little from more, and two threads give
#: the same results on every machine with at least two CPUs.
MAX_THREADS = 2

#: Clock ticks per second of /proc/stat's counters.
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: The environment as vaelib found it. OpenMP reads its wait settings once, when torch loads: that is right
#: after this line if vaelib loads torch (``import vaelib`` does), or was earlier if torch was imported first.
#: A change made later reaches only processes started afterwards.
_AT_IMPORT = dict(os.environ)


def set_wait_policy():
    """Put the test suite's wait settings in the environment unless ``OMP_WAIT_POLICY`` is already set;
    return the description (as :func:`wait_policy` words it) of the settings OpenMP runtimes started from now
    on will use.
    vaelib does not call it; ``tests/conftest.py`` does, for the notebooks it runs side by side.

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
    """How torch's OpenMP threads wait: ``"default"`` (nothing set: spin about 3 ms, then sleep),
    ``"PASSIVE, GOMP_SPINCOUNT=1000"`` (:func:`set_wait_policy`, as the test suite runs), ``"PASSIVE"``
    or ``"ACTIVE"``.

    OpenMP read the environment when torch loaded, so this describes the environment as vaelib found it
    (``import vaelib`` loads torch; if torch was imported first, set the variables before that). A change
    made after the import reaches only child processes, and is not reported here.
    """
    return _describe(_AT_IMPORT)


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


def cpu_clock():
    """A reading for :func:`idle_cpus`: ``(wall seconds, CPU-seconds the whole machine has been busy,
    CPU-seconds of this process)``, or ``None`` where ``/proc/stat`` cannot be read (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]   # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]
    return time.perf_counter(), busy / _CLOCK_TICKS, time.process_time()


def idle_cpus(start, end=None):
    """How many CPUs other processes left idle between two :func:`cpu_clock` readings (``end``: now),
    out of :func:`available_cpus`; ``None`` if either reading is missing or they are too close in time.

    The machine's busy time less this process's own is what everyone else used; spread over the
    wall time between the readings, it is how many CPUs they kept busy.
    """
    end = cpu_clock() if end is None else end
    if start is None or end is None or end[0] - start[0] < 0.02:
        return None
    cpus = available_cpus()
    if (os.cpu_count() or 1) > cpus:   # a container or a CPU set: the host's load is not ours
        return None
    others = ((end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0])
    return max(0.0, cpus - max(0.0, others))


def threads_for_load(start, end=None, most=None):
    """The thread count for the CPUs left idle between two readings: as many threads as idle CPUs
    (rounded), between 1 and ``most`` (default :func:`default_threads`); ``most`` if the load is unknown.

    A thread more than there are idle CPUs does not add speed, it takes turns with another process,
    and each of torch's many short parallel regions then waits for the thread that lost its turn.
    """
    most = default_threads() if most is None else most
    idle = idle_cpus(start, end)
    if idle is None:
        return most
    return max(1, min(most, math.floor(idle + 0.5)))
