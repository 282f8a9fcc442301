"""A judge for generated digits, validated before it is used: a small classifier and what it measures.

A generated image is shown to ``DigitClassifier``, a small CNN trained on the bundled training digits
(grey and binarized, shifted by up to 2 pixels; ``scripts/train_judge.py``). Per image it gives:

* ``label``: what the image looks like, the classifier's most probable digit;
* ``confidence``: that digit's probability;
* ``is_digit``: whether the confidence reaches ``threshold``, the confidence that 95 % of real held-out
  digits reach (calibrated once, stored with the checkpoint). Below it, the image is *not a digit*.

Per set of images:

* :func:`frechet_distance` between the classifier's features of the set and of real held-out digits
  (an MNIST analogue of FID, Heusel et al. 2017; 0 for identical statistics, and not 0 for two
  samples of real digits: :func:`real_floor` prints that floor);
* :func:`label_distance`: the total variation distance between the set's label histogram and the
  data's (0: the same mix of digits; 1: no digit in common).

Notebook 01 measures what it can and cannot see (blends, blurs, shifts, noise) before any model is
judged by it. All images are ``(n, 784)`` or ``(n, 1, 28, 28)`` floats in [0, 1].
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import flatten_inputs


class DigitClassifier(nn.Module):
    """A small CNN: 28 x 28 -> 16 x 14 x 14 -> 32 x 7 x 7 -> 64 features -> 10 logits.

    ``features(x)`` -> ``(n, 64)``, the penultimate layer (what :func:`frechet_distance` compares);
    ``forward(x)`` -> ``(n, 10)`` logits. ``threshold`` (a buffer) is the calibrated confidence.
    """

    def __init__(self, channels=(16, 32), features=64):
        super().__init__()
        self.config = {"channels": list(channels), "features": features}
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # (n, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # (n, c2, 7, 7)
            nn.Flatten(), nn.Linear(c2 * 49, features), nn.ReLU())           # (n, features)
        self.head = nn.Linear(features, 10)
        self.register_buffer("threshold", torch.tensor(0.0))

    def features(self, x):
        x = flatten_inputs(x).reshape(-1, 1, 28, 28)
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def _images(images):
    x = flatten_inputs(images)
    if len(x) == 0:
        raise ValueError("expected at least one image, got an empty tensor")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("expected pixel values in [0, 1] (decoded means or samples), got values outside")
    return x


@torch.no_grad()
def classify(classifier, images, batch_size=1000):
    """What each image looks like, and how sure the classifier is.

    Returns:
        labels: ``(n,)`` long, the most probable digit; confidence: ``(n,)`` float, its probability;
        is_digit: ``(n,)`` bool, confidence >= the classifier's calibrated ``threshold``.
    """
    x = _images(images)
    classifier.eval()
    probs = torch.cat([F.softmax(classifier(part), dim=1) for part in x.split(batch_size)])
    confidence, labels = probs.max(dim=1)
    return labels, confidence, confidence >= classifier.threshold


@torch.no_grad()
def features(classifier, images, batch_size=1000):
    """``(n, 64)`` float64: the classifier's penultimate features of each image."""
    x = _images(images)
    classifier.eval()
    return torch.cat([classifier.features(part) for part in x.split(batch_size)]).double()


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two sets of features ``(n, d)`` and ``(m, d)``:

        |mean_a - mean_b|^2 + trace(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)

    Returns a float (>= 0; 0 when means and covariances are equal). Needs at least 2 rows in each set.
    """
    if features_a.dim() != 2 or features_b.dim() != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"expected two feature matrices (n, d) with the same d, got {tuple(features_a.shape)} "
                         f"and {tuple(features_b.shape)}")
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError("need at least 2 images in each set to estimate a covariance")
    a, b = features_a.double(), features_b.double()
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    distance = (mean_a - mean_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * middle
    return max(distance.item(), 0.0)


def label_distance(labels, reference_labels, num_classes=10):
    """Total variation distance between two label histograms: half the sum of |share_a - share_b|, in [0, 1]."""
    if len(labels) == 0 or len(reference_labels) == 0:
        raise ValueError("expected at least one label in each set")
    a = torch.bincount(labels.long(), minlength=num_classes).double() / len(labels)
    b = torch.bincount(reference_labels.long(), minlength=num_classes).double() / len(reference_labels)
    return 0.5 * (a - b).abs().sum().item()


def judge_set(classifier, images, real_images, real_labels):
    """One row of scores for a set of generated images against real held-out digits.

    Returns a dict: ``"not_digit"`` (share of images below the threshold), ``"fd"`` (Fréchet distance of
    features), ``"labels"`` (total variation distance of the label histograms) and ``"counts"`` (``(10,)``
    images per label).
    """
    labels, _, is_digit = classify(classifier, images)
    return {"not_digit": 1 - is_digit.double().mean().item(),
            "fd": frechet_distance(features(classifier, images), features(classifier, real_images)),
            "labels": label_distance(labels, real_labels),
            "counts": torch.bincount(labels, minlength=10)}


def augment(x, generator=None, shift=2):
    """Training views of digits ``(n, 784)``: half binarized (a Bernoulli draw of each pixel), each shifted
    by up to ``shift`` pixels in each direction. Returns ``(n, 784)``."""
    n = len(x)
    binary = torch.bernoulli(x, generator=generator)
    pick = torch.rand(n, 1, generator=generator) < 0.5
    x = torch.where(pick, binary, x).reshape(n, 1, 28, 28)
    padded = F.pad(x, (shift, shift, shift, shift))
    dx, dy = (torch.randint(0, 2 * shift + 1, (2, n), generator=generator)).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(n)]).reshape(n, 784)


def speckle(n, generator=None):
    """``(n, 784)`` images that are no digit: each pixel ink with probability p, p uniform in [0.02, 0.5] per image."""
    p = 0.02 + 0.48 * torch.rand(n, 1, generator=generator)
    return (torch.rand(n, 784, generator=generator) < p).float()


def train_classifier(x_train, y_train, x_calibrate, epochs=8, batch_size=128, lr=2e-3, quantile=0.05, seed=0):
    """Train a :class:`DigitClassifier` with Adam on augmented views (:func:`augment`), then calibrate its
    threshold: the ``quantile`` of its confidence on the real digits ``x_calibrate`` (5 %: 95 % of real
    held-out digits count as digits). Returns the classifier in eval mode."""
    x_train, x_calibrate = _images(x_train), _images(x_calibrate)
    if len(y_train) != len(x_train):
        raise ValueError(f"need one label per training image, got {len(y_train)} for {len(x_train)}")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    classifier = DigitClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x_train) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    for _ in range(epochs):
        classifier.train()
        order = torch.randperm(len(x_train), generator=g)
        for start in range(0, len(x_train), batch_size):
            rows = order[start:start + batch_size]
            loss = F.cross_entropy(classifier(augment(x_train[rows], g)), y_train[rows].long())
            # outlier exposure (Hendrycks et al. 2019): on random speckle, a uniform guess over the ten digits
            noise = speckle(len(rows), g)
            loss = loss - 0.5 * F.log_softmax(classifier(noise), dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    _, confidence, _ = classify(classifier, x_calibrate)
    classifier.threshold.fill_(torch.quantile(confidence, quantile).item())
    return classifier.eval()
