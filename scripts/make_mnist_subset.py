"""Build vaelib/assets/mnist_subset.npz from MNIST's official test set.

Usage: python scripts/make_mnist_subset.py [RAW_MNIST_FOLDER]   (default: ../shared/data/mnist)

Only MNIST's 10,000 official test images are available where this package is built, so the
bundled subset is drawn from them: each digit's images are split 80/20 between "train" and
"test" (8,000 and 2,000 in all, chosen by a fixed random permutation). The archive is written byte for byte the same every
run (fixed zip timestamps), and its SHA-256 is printed: record it in vaelib/data.py.
"""

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vaelib.data import MNIST_MD5, md5_of, read_idx  # noqa: E402

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


def main(raw=ROOT.parent / "shared" / "data" / "mnist"):
    raw = Path(raw)
    files = {kind: raw / f"t10k-{kind}-idx{n}-ubyte.gz" for kind, n in (("images", 3), ("labels", 1))}
    for path in files.values():
        if md5_of(path) != MNIST_MD5[path.name]:
            raise SystemExit(f"{path} does not match its published MD5; use the official file")
    images, labels = read_idx(files["images"]), read_idx(files["labels"])
    train, test = stratified_split(labels)
    blob = deterministic_npz({
        "train_images": images[train], "train_labels": labels[train],
        "test_images": images[test], "test_labels": labels[test],
    })
    out = ROOT / "vaelib" / "assets" / "mnist_subset.npz"
    out.write_bytes(blob)
    print(f"wrote {out.relative_to(ROOT)}: {len(blob):,} bytes, "
          f"{len(train)} train / {len(test)} test images")
    print("SHA-256", hashlib.sha256(blob).hexdigest())


if __name__ == "__main__":
    main(*sys.argv[1:])
