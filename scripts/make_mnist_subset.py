"""Build vaelib/assets/mnist_subset.npz from MNIST's official test set (and the Fashion-MNIST subset).

Usage: python scripts/make_mnist_subset.py [RAW_MNIST_FOLDER]   (default: ../shared/data/mnist)
       python scripts/make_mnist_subset.py --fashion [RAW_FASHION_FOLDER]   (default: ../shared/data/fashion-mnist)

Only MNIST's 10,000 official test images are available where this package is built, so the
bundled subset is drawn from them: each digit's images are split 80/20 between "train" and
"test" (8,000 and 2,000 in all, chosen by a fixed random permutation). The archive is written byte for byte the same every
run (fixed zip timestamps), and its SHA-256 is printed: record it in vaelib/data.py.

Fashion-MNIST has all 70,000 images here, so its subset keeps the official split: 500 images
of each class from the training set and 100 of each from the test set (6,000 in all, under 3 MB).
The raw files were re-compressed by Debian, so they are checked by the SHA-256 of their
decompressed bytes (listed in ../shared/data/README.md), not by the published .gz MD5.
"""

import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from repo import ROOT

from vaelib.data import MNIST_MD5, md5_of, read_idx

FASHION_SHA256 = {  # of the decompressed files
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_PER_CLASS = {"train": 500, "test": 100}

TEST_SIZE = 2000


def test_counts(labels, test_size=TEST_SIZE):
    """How many of each digit go to "test": proportional to its count, summing to test_size."""
    counts = np.bincount(labels, minlength=10)
    share = counts * test_size / counts.sum()
    n = np.floor(share).astype(int)
    n[np.argsort(n - share)[: test_size - n.sum()]] += 1  # largest remainders round up
    return n


def stratified_split(labels, seed=0):
    """Indices (train, test), each digit split in proportion, in a fixed order."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit, n_test in enumerate(test_counts(labels)):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train, test = np.concatenate(train), np.concatenate(test)
    return rng.permutation(train), rng.permutation(test)  # mix the digits


def deterministic_npz(arrays):
    """Bytes of a compressed .npz whose content depends only on `arrays` (no timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, npy.getvalue(), compresslevel=9)
    return buffer.getvalue()


def per_class(labels, n, seed):
    """n indices of each class, in a fixed random order."""
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n] for c in range(10)])
    return rng.permutation(idx)


def fashion(raw=ROOT.parent / "shared" / "data" / "fashion-mnist"):
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        loaded = {}
        for kind, n in (("images", 3), ("labels", 1)):
            path = Path(raw) / f"{prefix}-{kind}-idx{n}-ubyte.gz"
            array = read_idx(path)
            with gzip.open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != FASHION_SHA256[path.name]:
                    raise SystemExit(f"{path} does not hold the official Fashion-MNIST bytes")
            loaded[kind] = array
        keep = per_class(loaded["labels"], FASHION_PER_CLASS[split], seed=1 if split == "train" else 2)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = loaded["images"][keep], loaded["labels"][keep]
    write(deterministic_npz(arrays), "fashion_mnist_subset.npz", arrays)


def write(blob, name, arrays):
    out = ROOT / "vaelib" / "assets" / name
    out.write_bytes(blob)
    print(f"wrote {out.relative_to(ROOT)}: {len(blob):,} bytes, "
          f"{len(arrays['train_labels'])} train / {len(arrays['test_labels'])} test images")
    print("SHA-256", hashlib.sha256(blob).hexdigest())


def main(raw=ROOT.parent / "shared" / "data" / "mnist"):
    raw = Path(raw)
    files = {kind: raw / f"t10k-{kind}-idx{n}-ubyte.gz" for kind, n in (("images", 3), ("labels", 1))}
    for path in files.values():
        if md5_of(path) != MNIST_MD5[path.name]:
            raise SystemExit(f"{path} does not match its published MD5; use the official file")
    images, labels = read_idx(files["images"]), read_idx(files["labels"])
    train, test = stratified_split(labels)
    arrays = {"train_images": images[train], "train_labels": labels[train],
              "test_images": images[test], "test_labels": labels[test]}
    write(deterministic_npz(arrays), "mnist_subset.npz", arrays)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fashion"]:
        fashion(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
