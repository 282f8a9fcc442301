"""vaelib.shapes: the squares whose factors are known, and the mutual information gap (MIG)."""

import math

import pytest
import torch

from vaelib import shapes


def brute_force_mutual_information(a, b):
    """sum over pairs of values p(u, v) log(p(u, v) / (p(u) p(v))), counted with Python loops."""
    a, b = a.tolist(), b.tolist()
    n = len(a)
    total = 0.0
    for u in set(a):
        for v in set(b):
            joint = sum(1 for s, t in zip(a, b) if s == u and t == v) / n
            if joint:
                total += joint * math.log(joint / ((a.count(u) / n) * (b.count(v) / n)))
    return total


def test_make_shapes_draws_every_combination_once_as_binary_squares():
    images, factors = shapes.make_shapes()
    assert images.shape == (1024, 784) and factors.shape == (1024, 3) and factors.dtype == torch.int64
    assert set(images.unique().tolist()) == {0.0, 1.0}
    assert len({tuple(f) for f in factors.tolist()}) == 1024
    sizes = torch.tensor(shapes.SIZES)[factors[:, 2]]
    assert torch.equal(images.sum(1), (sizes ** 2).float())          # a full square, never clipped
    image = images[0].view(28, 28)                                    # x = 6, y = 6, size 4: rows and columns 4..7
    assert image[4:8, 4:8].all() and image.sum() == 16


def test_square_refuses_a_square_outside_the_image():
    with pytest.raises(ValueError, match="does not fit"):
        shapes.square(1, 10, 6)


def test_load_shapes_splits_the_set_the_same_way_every_time():
    train, f_train = shapes.load_shapes("train")
    test, f_test = shapes.load_shapes("test", binarize=True)
    assert len(train) + len(test) == 1024 and len(test) == 1024 // shapes.HELD_OUT_EVERY
    assert not {tuple(f) for f in f_train.tolist()} & {tuple(f) for f in f_test.tolist()}
    assert torch.equal(shapes.load_shapes("train")[0], train)
    assert shapes.load_shapes("all", as_images=True)[0].shape == (1024, 1, 28, 28)
    with pytest.raises(ValueError, match="split must be"):
        shapes.load_shapes("valid")


def test_discretize_cuts_each_column_into_equal_bins():
    codes = torch.tensor([[0.0, 5.0], [0.5, 5.0], [0.99, 5.0], [1.0, 5.0]])
    assert shapes.discretize(codes, bins=2).tolist() == [[0, 0], [1, 0], [1, 0], [1, 0]]
    centres = torch.cat([torch.zeros(1), (torch.arange(20) + 0.5) / 20, torch.ones(1)])   # the ends, each bin's centre
    assert shapes.discretize(centres[:, None], bins=20).squeeze(1).tolist() == [0] + list(range(20)) + [19]
    with pytest.raises(ValueError, match="bins"):
        shapes.discretize(codes, bins=0)
    with pytest.raises(ValueError, match="codes"):
        shapes.discretize(torch.zeros(4))


def test_mutual_information_agrees_with_a_brute_force_count():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (300,), generator=g)
    b = (a + torch.randint(0, 3, (300,), generator=g)) % 4
    assert shapes.mutual_information(a, b).item() == pytest.approx(brute_force_mutual_information(a, b), abs=1e-10)
    assert shapes.entropy(a).item() == pytest.approx(brute_force_mutual_information(a, a), abs=1e-10)
    assert shapes.entropy(torch.arange(8)).item() == pytest.approx(math.log(8))
    assert shapes.mutual_information(a, torch.zeros_like(a)).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="pair up"):
        shapes.mutual_information(a, b[:10])


def test_mig_is_one_for_a_disentangled_code_and_zero_for_a_code_copied_twice():
    _, factors = shapes.make_shapes()
    perfect = factors.float()                                   # one unit per factor, nothing else
    assert shapes.mig(perfect, factors)["mig"].item() == pytest.approx(1.0)
    shuffled = perfect[:, [2, 0, 1]]                            # which unit holds which factor does not matter
    assert shapes.mig(shuffled, factors)["mig"].item() == pytest.approx(1.0)
    twice = torch.cat([perfect, perfect], dim=1)                # every factor in two units: no gap
    assert shapes.mig(twice, factors)["mig"].item() == pytest.approx(0.0)
    constant = torch.cat([perfect, torch.zeros(len(perfect), 2)], dim=1)   # unused units cost nothing
    assert shapes.mig(constant, factors)["mig"].item() == pytest.approx(1.0)
    mixed = torch.stack([perfect[:, 0] + 16 * perfect[:, 1], perfect[:, 2], torch.zeros(len(perfect))], dim=1)
    result = shapes.mig(mixed, factors, bins=256)               # x and y share one unit: a gap only for size
    assert result["gaps"][2].item() == pytest.approx(1.0)
    assert result["mig"].item() == pytest.approx(1 / 3 + 2 / 3 * result["gaps"][0].item(), abs=1e-6)


def test_mutual_information_gap_takes_the_top_two_units_and_normalizes_by_the_factor():
    mi = torch.tensor([[2.0, 0.1], [0.5, 0.3], [1.0, 0.6]], dtype=torch.float64)   # (3 units, 2 factors)
    h = torch.tensor([4.0, 1.2], dtype=torch.float64)
    expected = ((2.0 - 1.0) / 4.0 + (0.6 - 0.3) / 1.2) / 2
    assert shapes.mutual_information_gap(mi, h).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="units >= 2"):
        shapes.mutual_information_gap(mi[:1], h)
    with pytest.raises(ValueError, match="units >= 2"):
        shapes.mutual_information_gap(mi, h[:1])


def test_active_units_and_traversal():
    mu = torch.tensor([[0.0, 1.0, 0.3], [0.0, -1.0, 0.31]])
    assert shapes.active_units(mu).tolist() == [False, True, False]

    class Echo:                                                   # decodes a code to itself
        def decode_images(self, z):
            return z

    rows = shapes.traversal(Echo(), torch.tensor([5.0, 6.0, 7.0]), torch.tensor([-1.0, 1.0]))
    assert rows.shape == (3, 2, 3)
    assert rows[1].tolist() == [[5.0, -1.0, 7.0], [5.0, 1.0, 7.0]]
