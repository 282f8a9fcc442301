"""How much slower training gets beside one busy process, with vaelib's thread settings and without.

    python benchmarks/contention.py [--steps 126] [--budget 20] [--repeats 2] [--pairs]

What it measures
----------------
Training steps of the classic 784-400-20 VAE (``vaelib.VAE(hidden=(400,), latent_dim=20)``, batch
128, Adam) on vaelib's bundled 8,000 training digits, reported as seconds per epoch (63 steps).
Each configuration runs in a fresh Python process (OpenMP reads its wait policy once, when torch
loads), first alone and then beside one busy process (a CPU-bound Python loop, as a second notebook
training or another user's job would be), alternating the order from one repetition to the next.

Configurations:

* ``vaelib``: what ``import vaelib`` and ``seed_everything`` give: ``OMP_WAIT_POLICY=PASSIVE`` with
  ``GOMP_SPINCOUNT=1000`` (idle threads poll about 10 microseconds, then sleep) and
  ``vaelib.threads.default_threads()`` threads (at most 2, never more than the CPUs this process may use);
* ``sleep at once``: ``OMP_WAIT_POLICY=PASSIVE`` alone (idle threads sleep at once), 2 threads;
* ``spin, 2 threads``: torch imported before vaelib with nothing set (GNU OpenMP's default: idle
  threads poll about 3 ms before they sleep), 2 threads: what every notebook got before vaelib.threads;
* ``1 thread``: vaelib's settings with one thread (no OpenMP barriers at all).

The slowdown is (seconds per epoch beside the busy process) / (seconds per epoch alone); the target
for vaelib's configuration is at most 1.6x. Alone matters as much: sleeping at once never slows
down beside a busy process because it is slow already (a wake-up in every parallel region).
With ``--pairs``, each configuration also trains twice at once (two notebooks training side by side
on one machine), and the slower of the two is reported against alone. Each measurement runs
``--steps`` steps or stops after ``--budget`` seconds (a spinning configuration can be 10 to 50
times slower under load); the figure is the time per step actually measured, times 63.

Timings depend on everything else the machine runs: the load average is printed with the results,
and on a machine shared with other jobs "alone" is only alone with respect to this benchmark's busy
process. CPU time per epoch (all threads) is printed too: spinning shows as CPU time well above the
wall time per epoch times the thread count's useful share.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

STEPS_PER_EPOCH = 63  # 8,000 digits in batches of 128

CONFIGS = {
    "vaelib": {"policy": "vaelib", "threads": None},
    "sleep at once": {"policy": "passive", "threads": 2},
    "spin, 2 threads": {"policy": "spin", "threads": 2},
    "1 thread": {"policy": "vaelib", "threads": 1},
}


def child(policy, threads, steps, budget):
    """Train and print 'seconds-per-epoch cpu-seconds-per-epoch threads policy'."""
    if policy == "spin":
        import torch  # noqa: F401  (loaded before vaelib: OpenMP starts with its default policy)
    elif policy == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # chosen by the user: vaelib keeps it, adds no spin count
    import vaelib  # first (unless policy == "spin"): it sets its wait settings before torch loads
    from vaelib import threads as vthreads

    import torch

    count = vthreads.configure_threads(threads)
    torch.manual_seed(0)
    x, _ = vaelib.load_mnist("train")
    model = vaelib.VAE(hidden=(400,), latent_dim=20)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)

    def step(i):
        start = (i * 128) % (len(x) - 128)
        loss = model.loss(x[start:start + 128], 1.0)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(5):  # warm-up: first-call allocations, thread pool start
        step(i)
    done, wall, cpu = 0, time.perf_counter(), time.process_time()
    while done < steps and time.perf_counter() - wall < budget:
        step(done)
        done += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{wall / done * STEPS_PER_EPOCH:.4f} {cpu / done * STEPS_PER_EPOCH:.4f} {count} {vthreads.wait_policy()}")


def start(name, steps, budget):
    """Start one measurement of configuration ``name`` in a fresh process; :func:`result` reads it."""
    config = CONFIGS[name]
    cmd = [sys.executable, os.path.abspath(__file__), "--child", config["policy"], str(config["threads"]),
           str(steps), str(budget)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def result(process):
    """``(seconds per epoch, CPU seconds per epoch, threads, wait policy)`` of a started measurement."""
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"a measurement failed (exit {process.returncode})")
    seconds, cpu, count, policy = out.split(maxsplit=3)
    return float(seconds), float(cpu), int(count), policy.strip()


def measure(name, steps, budget):
    return result(start(name, steps, budget))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2 * STEPS_PER_EPOCH, help="training steps per measurement")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds at most per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="alone/beside pairs per configuration")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append", help="configurations to run")
    parser.add_argument("--pairs", action="store_true", help="also train two at once, side by side")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        policy, threads, steps, budget = args.child
        child(policy, None if threads == "None" else int(threads), int(steps), float(budget))
        return

    from vaelib import threads as vthreads

    print(f"CPUs: os.cpu_count() {os.cpu_count()}, available to this process {vthreads.available_cpus()} "
          f"(affinity and cgroup quota {vthreads.cgroup_cpu_quota()}); load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    results = {}
    for name in args.only or CONFIGS:
        alone, beside, cpu_alone, cpu_beside, pairs = [], [], [], [], []
        for repeat in range(args.repeats):
            for busy in ((False, True) if repeat % 2 == 0 else (True, False)):
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                try:
                    if hog:
                        time.sleep(0.5)
                    seconds, cpu, count, policy = measure(name, args.steps, args.budget)
                finally:
                    if hog:
                        hog.kill()
                        hog.wait()
                (beside if busy else alone).append(seconds)
                (cpu_beside if busy else cpu_alone).append(cpu)
            if args.pairs:  # two trainings at once: the slower one counts
                both = [start(name, args.steps, args.budget) for _ in range(2)]
                pairs.append(max(result(process)[0] for process in both))
        results[name] = (statistics.median(alone), statistics.median(beside), count, policy,
                         statistics.median(cpu_alone), statistics.median(cpu_beside),
                         statistics.median(pairs) if pairs else None)
        print(f"  {name}: done", flush=True)

    print(f"\nseconds per epoch of 8,000 digits (median of {args.repeats}), alone and beside one busy process"
          + (", and the slower of two trainings run at once" if args.pairs else ""))
    print(f"{'configuration':<16} {'threads':>7} {'wait settings':>29} {'alone':>7} {'beside busy':>12} "
          f"{'slowdown':>9} {'CPU s alone':>12} {'CPU s beside':>13}"
          + (f" {'two at once':>12} {'slowdown':>9}" if args.pairs else ""))
    for name, (alone, beside, count, policy, cpu_alone, cpu_beside, pair) in results.items():
        print(f"{name:<16} {count:>7} {policy:>29} {alone:>7.3f} {beside:>12.3f} {beside / alone:>8.2f}x "
              f"{cpu_alone:>12.3f} {cpu_beside:>13.3f}" + (f" {pair:>12.3f} {pair / alone:>8.2f}x" if pair else ""))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if "vaelib" in results:
        alone, beside = results["vaelib"][:2]
        print(f"vaelib's settings: {beside / alone:.2f}x slower beside a busy process (target <= 1.6x): "
              f"{'met' if beside / alone <= 1.6 else 'NOT met'}")
        for other in ("spin, 2 threads", "sleep at once"):
            if other in results:
                print(f"  alone, {other} takes {results[other][0] / alone:.2f}x vaelib's time; "
                      f"beside a busy process {results[other][1] / beside:.2f}x")


if __name__ == "__main__":
    main()
