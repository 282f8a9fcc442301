"""Train the judge of generated digits (vaelib.judge.DigitClassifier) by its recipe in the registry, and save it.

Usage: python scripts/train_judge.py

After training (vaelib.judge.train_classifier on the 8,000 bundled training digits, grey and binarized,
shifted by up to 2 pixels, with random speckle as outlier exposure), its "not a digit" threshold is
calibrated on the 2,000 grey held-out digits: 95 % of them reach it. Saved in float32 (small enough,
and the calibrated threshold keeps its digits) to notebooks/checkpoints/digit_judge.pt with extras
``accuracy`` (held-out, grey digits) and ``threshold``; then ``python scripts/ship_checkpoints.py
digit_judge`` copies it into vaelib/assets/. Same machine, same thread count: the same file.
"""

import time

import torch
from repo import ROOT

import vaelib
from vaelib.judge import classify
from vaelib.pretrained import PRETRAINED, train_from_recipe

OUT = ROOT / "notebooks" / "checkpoints" / "digit_judge.pt"


def main():
    start = time.perf_counter()
    classifier = train_from_recipe("digit_judge")
    seconds = time.perf_counter() - start
    x_test, y_test = vaelib.load_mnist("test")
    labels, _, is_digit = classify(classifier, x_test)
    accuracy = (labels == y_test).double().mean().item()
    vaelib.save_checkpoint(classifier, OUT, accuracy=round(accuracy, 4),
                           threshold=round(classifier.threshold.item(), 4))
    print(f"digit_judge: {PRETRAINED['digit_judge'].fit} in {seconds:.1f} s; held-out accuracy {100 * accuracy:.1f} %, "
          f"threshold {classifier.threshold.item():.3f} (held-out digits counted as digits: "
          f"{100 * is_digit.double().mean().item():.1f} %) -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
