"""The machine: reproducible runs (``seed_everything``) and what the series needs (``check_environment``)."""

import platform
import random
from importlib import metadata

import numpy as np
import torch
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .threads import configure_threads


def seed_everything(seed=0, threads=2):
    """Seed Python, NumPy and torch, and fix torch's CPU thread count: at most ``threads`` (2), never
    more than the CPUs this process may use (its affinity and cgroup quota; see :mod:`vaelib.threads`).

    The same seed and thread count give bit-identical results on the same machine (the number
    of threads changes the order of floating-point sums, hence the last digits). Two threads
    suit a laptop or a 2-core CI runner; pass ``threads=None`` to leave torch's choice alone.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        configure_threads(threads)  # at most `threads`, never more than the CPUs this process may use


def check_environment():
    """What the series needs, and what this machine has.

    The needs are vaelib's own requirements, read from its installed metadata (``pyproject.toml``'s
    ``requires-python`` and ``dependencies``), so there is no second list to keep in step.

    Returns:
        list of ``(name, version or None, advice)``: ``version`` is None when the package is
        missing or too old, and ``advice`` says what to do about it.
    """
    try:
        needs = metadata.metadata("vaelib")
    except metadata.PackageNotFoundError:
        return [("vaelib", None, "not installed: from a checkout of the repository, pip install -e .")]
    python = platform.python_version()
    wanted = needs["Requires-Python"]
    report = [("python", python, "" if Version(python) in SpecifierSet(wanted or "") else f"the series needs Python {wanted}")]
    for line in metadata.requires("vaelib") or []:
        requirement = Requirement(line)
        if requirement.marker is not None:  # extras (e.g. test tools): not what a notebook needs
            continue
        name, wanted = requirement.name, str(requirement.specifier)
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            report.append((name, None, f"missing: pip install '{name}{wanted}'"))
            continue
        ok = requirement.specifier.contains(Version(version), prereleases=True)
        report.append((name, version if ok else None,
                       "" if ok else f"version {version} is too old: pip install -U '{name}{wanted}'"))
    from .train import pick_device
    report.append(("device", str(pick_device()), ""))
    return report

