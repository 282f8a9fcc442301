"""vaelib.judge: the classifier judge, its set-level scores, and its errors."""

import pytest
import torch

import vaelib
from vaelib import judge


@pytest.fixture(scope="module")
def classifier():
    return vaelib.load_pretrained("digit_judge")


def test_the_shipped_judge_reads_held_out_digits_and_its_threshold_accepts_95_percent(classifier):
    x_test, y_test = vaelib.load_mnist("test")
    labels, confidence, is_digit = judge.classify(classifier, x_test.reshape(-1, 1, 28, 28))
    assert (labels == y_test).double().mean() == pytest.approx(classifier.extra["accuracy"], abs=1e-4)
    assert is_digit.double().mean() == pytest.approx(0.95, abs=0.002)
    assert ((confidence > 0.1) & (confidence <= 1)).all()


def test_the_judge_rejects_noise_and_the_mean_image(classifier):
    x_train, _ = vaelib.load_mnist("train")
    noise = torch.rand(200, 784, generator=torch.Generator().manual_seed(0))
    assert not judge.classify(classifier, noise)[2].any()
    assert not judge.classify(classifier, x_train.mean(0, keepdim=True))[2].any()


def test_frechet_distance_is_zero_for_equal_statistics_and_grows_with_a_shift():
    a = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert judge.frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    assert judge.frechet_distance(a, a + 2) == pytest.approx(16, rel=1e-6)   # |mean shift|^2 = 4 * 2^2
    b = a * 3                                                                 # covariance 9x: (3 - 1)^2 per dim
    assert judge.frechet_distance(a, b) == pytest.approx(4 * torch.cov(a.T).diag().mean().item() * 4, rel=0.05)


def test_label_distance_is_total_variation():
    assert judge.label_distance(torch.tensor([0, 1]), torch.tensor([1, 0])) == 0
    assert judge.label_distance(torch.tensor([0, 0]), torch.tensor([1, 1])) == 1
    assert judge.label_distance(torch.tensor([0, 1]), torch.tensor([0, 0])) == 0.5


def test_judge_set_scores_real_digits_near_its_floor(classifier):
    x_train, _ = vaelib.load_mnist("train")
    x_test, y_test = vaelib.load_mnist("test")
    scores = judge.judge_set(classifier, x_train[:2000], x_test, y_test)
    assert scores["fd"] < 5 and scores["labels"] < 0.05 and scores["not_digit"] < 0.1
    assert scores["counts"].sum() == 2000


def test_bad_input_gets_a_clear_error(classifier):
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 784\)"):
        judge.classify(classifier, torch.zeros(2, 10))
    with pytest.raises(ValueError, match="at least one image"):
        judge.classify(classifier, torch.zeros(0, 784))
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]"):
        judge.classify(classifier, torch.full((2, 784), 2.0))
    with pytest.raises(ValueError, match="same d"):
        judge.frechet_distance(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="at least 2"):
        judge.frechet_distance(torch.zeros(1, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="one label per training image"):
        judge.train_classifier(torch.zeros(4, 784), torch.zeros(3), torch.zeros(2, 784))


def test_augment_keeps_shapes_and_values_in_range():
    x = torch.rand(6, 784, generator=torch.Generator().manual_seed(0))
    views = judge.augment(x, torch.Generator().manual_seed(1))
    assert views.shape == (6, 784) and views.min() >= 0 and views.max() <= 1
