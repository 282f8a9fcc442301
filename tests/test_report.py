import re
from pathlib import Path

import pytest
import torch

from vaelib import approx

SANITIZE = Path(__file__).parent / "sanitize.cfg"


def test_approx_prints_value_within_band():
    assert approx(152.27, 152.3, 0.5) == "≈152.3"
    assert approx(torch.tensor(74.0), 74, 3, digits=0, unit="%") == "≈74 %"


def test_approx_raises_outside_band():
    with pytest.raises(AssertionError, match="outside its stated band 152.3 ± 0.5"):
        approx(151.7, 152.3, 0.5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_approx_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        approx(bad, 1.0, 0.1)


def test_sanitize_masks_only_approx_figures():
    lines = SANITIZE.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if "≈" in line and line.startswith("regex:"))
    pattern, replacement = lines[i][len("regex: "):], lines[i + 1][len("replace: "):]
    text = f"test -ELBO {approx(152.27, 152.3, 0.5)} nats over 2000 digits, k = 1000"
    assert re.sub(pattern, replacement, text) == "test -ELBO ≈TRAINED nats over 2000 digits, k = 1000"
