"""One criterion for judging decoded images, used by every notebook that compares models.

A generated image is judged by its nearest real digit in the training set (Euclidean distance
in pixel space, images in [0, 1]): that digit's label says what the image *looks like*, and the
distance says how far it is from anything the model was trained on. An image is *off the data*
when that distance is larger than almost every real held-out digit's distance to its own nearest
training digit (the ``quantile`` of those distances, 0.95 by default). Pixel distance is a crude
judge (it prefers a blurry average to a sharp digit shifted by one pixel), so the notebooks use it
the same way for every model and show the images beside the counts.
"""

import torch

from .models import flatten_inputs


def nearest_digit(images, reference, reference_labels, batch_size=500):
    """Label of, and distance to, the nearest reference image of each image.

    Args:
        images: (n, 784) generated or real images in [0, 1].
        reference: (m, 784) real images, e.g. the training set; reference_labels: (m,) ints.

    Returns:
        labels: (n,) long, the label of each image's nearest reference image.
        distances: (n,) float, the Euclidean distance to it.
    """
    images, reference = flatten_inputs(images), flatten_inputs(reference)
    if len(reference_labels) != len(reference):
        raise ValueError(f"need one label per reference image, got {len(reference_labels)} labels "
                         f"for {len(reference)} images")
    labels, distances = [], []
    for start in range(0, len(images), batch_size):
        d = torch.cdist(images[start:start + batch_size], reference)
        best, index = d.min(dim=1)
        labels.append(reference_labels[index])
        distances.append(best)
    return torch.cat(labels), torch.cat(distances)


def off_data_threshold(test_images, reference, reference_labels, quantile=0.95):
    """The distance beyond which an image counts as off the data: the ``quantile`` of real
    held-out digits' distances to their nearest reference digit. Returns a float."""
    _, distances = nearest_digit(test_images, reference, reference_labels)
    return torch.quantile(distances, quantile).item()

