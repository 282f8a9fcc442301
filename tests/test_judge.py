import pytest
import torch

from vaelib.judge import nearest_digit, off_data_threshold


def test_nearest_digit_finds_the_closest_reference():
    reference = torch.eye(784)[:3]
    labels = torch.tensor([7, 1, 4])
    images = torch.stack([reference[2] * 0.9, reference[0] + 0.1 * reference[1]])
    found, distances = nearest_digit(images.reshape(2, 1, 28, 28), reference, labels, batch_size=1)
    assert found.tolist() == [4, 7]
    torch.testing.assert_close(distances, torch.tensor([0.1, 0.1]))


def test_off_data_threshold_is_a_quantile_of_real_distances():
    reference = torch.zeros(2, 784)
    test = torch.zeros(5, 784)
    test[:, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert off_data_threshold(test, reference, torch.tensor([0, 1]), quantile=0.5) == pytest.approx(3.0)


def test_nearest_digit_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected inputs of shape \(batch, 784\)"):
        nearest_digit(torch.zeros(2, 10), torch.zeros(3, 784), torch.zeros(3))
    with pytest.raises(ValueError, match="one label per reference"):
        nearest_digit(torch.zeros(2, 784), torch.zeros(3, 784), torch.zeros(2))
