"""Images whose factors are known, and how well a code lines up with them (notebook 13).

Two halves of one idea, *disentanglement*:

* :func:`make_shapes` draws a white square on a black 28 x 28 image, once for every combination of
  three **factors**: its horizontal position, its vertical position and its size. The images are
  binary, so a Bernoulli decoder is a proper likelihood for them, and they are made by code, the
  same every time: nothing to download. :func:`load_shapes` splits them into a training set and a
  held-out set, as :func:`vaelib.load_mnist` does for digits.
* :func:`mutual_information_gap` scores a code against the factors: the **MIG** of Chen, Li, Grosse
  & Duvenaud (2018). For each factor, the mutual information with its most informative latent unit
  minus that with the runner-up, divided by the factor's entropy; then the mean over the factors.
  1 when each factor lives in one unit of its own, 0 when no unit stands out. The mutual
  informations are estimated as in ``disentanglement_lib``, the code of Locatello et al. (2019):
  each unit's posterior means are put into 20 equal-width bins (:func:`discretize`) and counted
  (:func:`mutual_information`).

All information is in nats (natural logarithms).
"""

import torch

#: The factors of :func:`make_shapes`, in the order of its ``factors`` columns.
FACTOR_NAMES = ("x", "y", "size")
#: Centres of the square, in pixels from the left (x) and from the top (y).
POSITIONS = tuple(range(6, 22))
#: Side lengths of the square, in pixels.
SIZES = (4, 6, 8, 10)
#: One image in this many (of every size and position, at random but fixed) is held out.
HELD_OUT_EVERY = 5


def square(x, y, size):
    """One ``(28, 28)`` float image: 1 on a ``size`` x ``size`` square centred near pixel ``(x, y)``, 0 elsewhere.

    The square covers columns ``x - size // 2`` to ``x - size // 2 + size - 1`` (rows alike); it must
    fit inside the image.
    """
    left, top = x - size // 2, y - size // 2
    if size < 1 or min(left, top) < 0 or max(left, top) + size > 28:
        raise ValueError(f"a square of size {size} centred at ({x}, {y}) does not fit in 28 x 28 pixels")
    image = torch.zeros(28, 28)
    image[top:top + size, left:left + size] = 1.0
    return image


def make_shapes(positions=POSITIONS, sizes=SIZES):
    """Every combination of the factors, once: x (``positions``), y (``positions``) and ``sizes``.

    Returns:
        images: ``(N, 784)`` float32 of 0s and 1s, N = len(positions)^2 * len(sizes) (1,024 by default)
        factors: ``(N, 3)`` int64, the *index* of each factor's value (x, y, size; see ``FACTOR_NAMES``):
            ``positions[factors[i, 0]]`` is image i's x.
    """
    positions, sizes = list(positions), list(sizes)
    if not positions or not sizes:
        raise ValueError("need at least one position and one size")
    images, factors = [], []
    for i, x in enumerate(positions):
        for j, y in enumerate(positions):
            for k, size in enumerate(sizes):
                images.append(square(x, y, size).reshape(784))
                factors.append((i, j, k))
    return torch.stack(images), torch.tensor(factors, dtype=torch.int64)


def load_shapes(split="train", binarize=False, as_images=False):
    """The squares of :func:`make_shapes`, split as the digits are: ``"train"``, ``"test"`` or ``"all"``.

    One image in ``HELD_OUT_EVERY`` (a fixed random choice) is held out: the test set holds
    combinations of position and size that the training set never shows.
    ``binarize`` is accepted so this loader stands in for :func:`vaelib.load_mnist`; the images are binary already.

    Returns:
        ``(images, factors)``: ``(n, 784)`` float32 (or ``(n, 1, 28, 28)`` with ``as_images``) and ``(n, 3)`` int64.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    images, factors = make_shapes()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    held_out = torch.zeros(len(images), dtype=torch.bool)
    held_out[order[:len(images) // HELD_OUT_EVERY]] = True
    keep = {"train": ~held_out, "test": held_out, "all": torch.ones_like(held_out)}[split]
    images, factors = images[keep], factors[keep]
    return (images.view(-1, 1, 28, 28) if as_images else images), factors


def _codes(name, t, dim):
    if not torch.is_tensor(t) or t.dim() != dim or len(t) == 0:
        shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
        raise ValueError(f"{name} must be a non-empty tensor of {dim} dimension(s), got {shape}")


def discretize(codes, bins=20):
    """Each column of ``codes`` ``(n, d)`` into ``bins`` equal-width bins between its min and max -> ``(n, d)`` int64.

    Bin indices run from 0 to ``bins - 1``; a column that never moves falls into bin 0.
    """
    _codes("codes", codes, 2)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}")
    codes = codes.double()
    low, high = codes.min(dim=0).values, codes.max(dim=0).values
    width = torch.where(high > low, (high - low) / bins, torch.ones_like(low))
    return ((codes - low) / width).floor().clamp(0, bins - 1).long()


def mutual_information(a, b):
    """Mutual information in nats of two discrete variables, from their ``n`` paired values ``(n,)`` (ints).

    The plug-in estimate: ``sum_{u,v} p(u, v) log(p(u, v) / (p(u) p(v)))`` with the frequencies counted.
    ``mutual_information(a, a)`` is the entropy of ``a``.
    """
    _codes("a", a, 1)
    _codes("b", b, 1)
    if len(a) != len(b):
        raise ValueError(f"a and b must pair up: got {len(a)} and {len(b)} values")
    _, a = torch.unique(a, return_inverse=True)
    _, b = torch.unique(b, return_inverse=True)
    joint = torch.zeros(int(a.max()) + 1, int(b.max()) + 1, dtype=torch.float64)
    joint.index_put_((a, b), torch.ones(len(a), dtype=torch.float64), accumulate=True)
    joint /= len(a)
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    seen = joint > 0
    return (joint[seen] * (joint[seen] / outer[seen]).log()).sum()


def entropy(a):
    """Entropy in nats of a discrete variable from its values ``(n,)`` (ints): the plug-in estimate."""
    return mutual_information(a, a)


def mutual_information_matrix(codes, factors):
    """``(d, K)``: entry ``[j, k]`` is the mutual information (nats) of discrete code ``j`` and factor ``k``.

    Args:
        codes: ``(n, d)`` int, e.g. :func:`discretize` of the posterior means
        factors: ``(n, K)`` int, the factors of the same n images
    """
    _codes("codes", codes, 2)
    _codes("factors", factors, 2)
    if len(codes) != len(factors):
        raise ValueError(f"codes and factors must describe the same images: got {len(codes)} and {len(factors)} rows")
    return torch.stack([torch.stack([mutual_information(codes[:, j], factors[:, k]) for k in range(factors.shape[1])])
                        for j in range(codes.shape[1])])


def mutual_information_gap(mi, factor_entropy):
    """The MIG from a mutual-information matrix: ``(1 / K) sum_k (I_(1)k - I_(2)k) / H(v_k)``.

    Args:
        mi: ``(d, K)`` nats, :func:`mutual_information_matrix` (d >= 2 units, K factors)
        factor_entropy: ``(K,)`` nats, the entropy of each factor
    Returns:
        0-d tensor: for each factor, the largest mutual information with one unit minus the second
        largest, divided by the factor's entropy (so each lies in [0, 1]); the mean over the factors.
    """
    _codes("mi", mi, 2)
    _codes("factor_entropy", factor_entropy, 1)
    if mi.shape[0] < 2 or mi.shape[1] != len(factor_entropy):
        raise ValueError(f"need mi (units >= 2, factors) and factor_entropy (factors,), got {tuple(mi.shape)} "
                         f"and {tuple(factor_entropy.shape)}")
    top = mi.topk(2, dim=0).values                # (2, K): the best unit and the runner-up, per factor
    return ((top[0] - top[1]) / factor_entropy).mean()


def mig(mu, factors, bins=20):
    """The MIG of posterior means ``mu`` ``(n, d)`` against the ``factors`` ``(n, K)`` of the same images.

    Returns:
        dict: ``"mig"`` (0-d tensor), ``"gaps"`` ``(K,)`` (each factor's normalized gap), ``"mi"`` ``(d, K)`` nats
        and ``"entropy"`` ``(K,)`` nats.
    """
    mi = mutual_information_matrix(discretize(mu, bins), factors)
    h = torch.stack([entropy(factors[:, k]) for k in range(factors.shape[1])])
    top = mi.topk(2, dim=0).values
    return {"mig": mutual_information_gap(mi, h), "gaps": (top[0] - top[1]) / h, "mi": mi, "entropy": h}


def active_units(mu, threshold=0.01):
    """``(d,)`` bool: the units whose posterior mean moves with the image, ``Var_x(mu_u) > threshold``
    (Burda et al. 2015; notebook 07)."""
    _codes("mu", mu, 2)
    return mu.var(dim=0) > threshold


def traversal(model, z, values):
    """Decoded images of ``z`` ``(d,)`` with one unit at a time set to each of ``values`` ``(m,)``.

    Returns:
        ``(d, m, 784)`` pixel values in [0, 1]: row ``u`` moves unit ``u``, the others stay at ``z``.
    """
    _codes("z", z, 1)
    _codes("values", values, 1)
    d, m = len(z), len(values)
    codes = z.repeat(d, m, 1)                                   # (d, m, d)
    codes[torch.arange(d), :, torch.arange(d)] = values.to(z.dtype)
    with torch.no_grad():
        return model.decode_images(codes.reshape(d * m, d)).reshape(d, m, -1)

