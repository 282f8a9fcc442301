"""Printing figures that come from training, so stored outputs hold on every CPU.

Training in float32 is bit-reproducible on one machine, not across CPUs: another CPU sums in
another order, and a trained figure moves in its last digits. ``approx`` prints such a figure
with a leading ``≈`` and checks it lies within a stated tolerance of the value stored in the
notebook. The test suite masks ``≈<number>`` (``tests/sanitize.cfg``), so the check in the cell
is what keeps the figure honest on any machine. Exact figures (closed-form maths, counts that do
not depend on training) are printed plainly and compared exactly.
"""

import math


def approx(value, expect, tol, digits=1, unit=""):
    """``value`` as ``"≈<value>"`` after checking ``|value - expect| <= tol``.

    Args:
        value: a figure that depends on training (a float, int or 0-d tensor).
        expect: the value this notebook shows in its stored output.
        tol: how far the figure may move on another CPU or thread count (measured, stated).
        digits: decimals to print. unit: appended after a space (e.g. ``"%"`` or ``"nats"``).

    Returns:
        str, e.g. ``approx(152.27, 152.3, 0.5)`` -> ``"≈152.3"``.

    Raises:
        ValueError: if ``tol`` is negative or the value is not finite.
        AssertionError: if the value is outside ``expect ± tol`` (the figure changed: retrain
            on purpose, or look for a bug).
    """
    value = float(value)
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite figure, got {value}")
    if abs(value - expect) > tol:
        raise AssertionError(f"trained figure {value:.{digits + 2}f} is outside its stated band "
                             f"{expect} ± {tol}")
    text = f"≈{value:.{digits}f}"
    return f"{text} {unit}" if unit else text
