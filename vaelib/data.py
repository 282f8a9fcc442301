"""MNIST (and Fashion-MNIST) for the notebooks: a bundled offline subset, and the full set on request.

Two sources:

* ``source="bundled"`` (the default) reads ``vaelib/assets/mnist_subset.npz``, which ships inside
  the package, so every notebook runs with no network. It holds 10,000 real MNIST digits taken
  from MNIST's official **test** set (the only part of MNIST available where this package was
  built): 8,000 for training and 2,000 held out, each digit split 80/20 (stratified).
  ``scripts/make_mnist_subset.py`` builds it, byte for byte the same each run; its SHA-256 is
  recorded below and checked on every load.
* ``source="full"`` downloads the four official gzipped IDX files (60,000 training and 10,000
  test images) from the usual mirrors, checks each against its published MD5, and caches them.

Images come back as float32 in [0, 1], flat ``(N, 784)`` or as ``(N, 1, 28, 28)``; labels as int64.

:func:`load_fashion_mnist` does the same for Fashion-MNIST (Zalando; 28 x 28 grey images of ten
kinds of clothing, in the same file format): its bundled subset holds 5,000 training images
(500 a class) from the official training set and 1,000 test images (100 a class) from the
official test set, built by ``scripts/make_mnist_subset.py --fashion``.
"""

import gzip
import hashlib
import io
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch

from .checkpoints import atomic_write

ASSETS = Path(__file__).resolve().parent / "assets"
BUNDLED_FILE = ASSETS / "mnist_subset.npz"
BUNDLED_SHA256 = "06fdcc4db1307411b654b22af75f9f9d507327322f960a741335fed58b2807aa"

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The official files and their published MD5 checksums (of the .gz files).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

# IDX element types (the third byte of the magic number), from the format's description.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


FASHION_BUNDLED_FILE = ASSETS / "fashion_mnist_subset.npz"
FASHION_BUNDLED_SHA256 = "9d50bedfa013b1f55cd57dc66470abf5da8e96c7a97dc9caacf5842c41e8b7dc"
FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
FASHION_MD5 = {  # as published by Zalando
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot")


def default_cache_dir(dataset="mnist"):
    """Where ``source="full"`` keeps its downloads: ``$VAELIB_DATA`` or ``~/.cache/vaelib``, then the dataset's name."""
    return Path(os.environ.get("VAELIB_DATA", Path.home() / ".cache" / "vaelib")) / dataset


#: The seed of the one fixed binarization ``binarize=True`` gives (the same draw for every notebook and script).
BINARIZE_SEED = 0


def binarize(images, generator=None):
    """A binarized copy of grey images: each pixel is ink (1) with the probability its grey level gives.

    A grey MNIST digit is read as the probability of ink at each pixel; a binarized digit is one draw
    from it, an image a Bernoulli likelihood can produce. ``images``: floats in [0, 1], any shape.
    Returns a float tensor of 0s and 1s of the same shape (use a seeded ``generator`` for a fixed draw).
    """
    if not torch.is_tensor(images) or not images.is_floating_point():
        raise TypeError("expected a floating-point tensor of grey levels in [0, 1]")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("expected grey levels in [0, 1] (the probability of ink), got values outside")
    return torch.bernoulli(images, generator=generator)


def load_mnist(split="train", source="bundled", flatten=True, cache_dir=None, mirrors=MIRRORS, binarize=False):
    """Load MNIST digits and their labels.

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"bundled"`` (8,000 train / 2,000 test digits, offline) or ``"full"``
            (60,000 / 10,000, downloaded once and cached).
        flatten: ``True`` for images of shape ``(N, 784)``, ``False`` for ``(N, 1, 28, 28)``.
        cache_dir: download folder for ``source="full"`` (default: :func:`default_cache_dir`).
        mirrors: base URLs tried in order for ``source="full"``.
        binarize: ``False`` for the grey digits; ``True`` for one fixed binarization of them (a
            Bernoulli draw of every pixel, seeded with ``BINARIZE_SEED``: the same digits every call).
            Score a Bernoulli model on these; train it with ``fit(..., binarize=True)``, which draws a
            fresh binarization of the grey training digits every epoch.

    Returns:
        ``(images, labels)``: float32 images in [0, 1] (0s and 1s if binarized) and int64 labels in 0..9.
    """
    return _load(split, source, flatten, cache_dir, mirrors, "mnist", BUNDLED_FILE, BUNDLED_SHA256, MNIST_MD5,
                 binarize)


def load_fashion_mnist(split="train", source="bundled", flatten=True, cache_dir=None, mirrors=FASHION_MIRRORS,
                       binarize=False):
    """Load Fashion-MNIST images and labels, exactly as :func:`load_mnist` loads digits (``binarize`` too).

    Bundled: 5,000 train / 1,000 test images; full: 60,000 / 10,000. Class names: ``FASHION_CLASSES``.
    """
    return _load(split, source, flatten, cache_dir, mirrors, "fashion-mnist",
                 FASHION_BUNDLED_FILE, FASHION_BUNDLED_SHA256, FASHION_MD5, binarize)


def _load(split, source, flatten, cache_dir, mirrors, dataset, bundled_file, bundled_sha256, md5, binary=False):
    if not isinstance(binary, bool):
        raise ValueError(f"binarize must be True or False, got {binary!r}")
    if split not in ("train", "test"):
        raise ValueError(f'split must be "train" or "test", got {split!r}')
    if source == "bundled":
        images, labels = _read_bundled(split, bundled_file, bundled_sha256)
    elif source == "full":
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset)
        image_file, label_file = MNIST_FILES[split]
        images = read_idx(download(image_file, folder, mirrors, md5[image_file]))
        labels = read_idx(download(label_file, folder, mirrors, md5[label_file]))
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{image_file} holds {images.shape[0]} images but {label_file} "
                             f"holds {labels.shape[0]} labels")
    else:
        raise ValueError(f'source must be "bundled" or "full", got {source!r}')
    x, y = to_tensors(images, labels, flatten)
    if binary:
        x = binarize(x, torch.Generator().manual_seed(BINARIZE_SEED))
    return x, y


def to_tensors(images, labels, flatten=True):
    """uint8 ``(N, 28, 28)`` images and labels -> float32 ``(N, 784)`` or ``(N, 1, 28, 28)`` in [0, 1], int64."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    x = x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)
    return x, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def _read_bundled(split, path, sha256):
    if not path.exists():
        raise FileNotFoundError(f"the bundled subset is missing: {path}; "
                                "reinstall vaelib or run scripts/make_mnist_subset.py")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path} is damaged or was changed: SHA-256 {digest}, "
                         f"expected {sha256}; reinstall vaelib")
    with np.load(io.BytesIO(raw)) as archive:
        return archive[f"{split}_images"], archive[f"{split}_labels"]


def read_idx(path):
    """Read a (gzipped) IDX file into a NumPy array.

    The IDX format: two zero bytes, a type byte (0x08 = uint8, ...), a byte with the number of
    dimensions ``d``, then ``d`` big-endian uint32 sizes, then the data in row-major order.

    Raises:
        ValueError: if the file is not gzip, not IDX, or shorter or longer than its header says.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path} is not a readable gzip file ({e}); delete it and download again") from e
    if len(raw) < 4:
        raise ValueError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()} "
                         "(expected 0x0000 then a type byte such as 0x08 and the number of dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, it has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path} holds {len(raw) - header} bytes of data, but its header "
                         f"says shape {shape} of {dtype} ({expected} bytes)")
    # a copy: an array over the bytes would be read-only, and torch.from_numpy warns about those
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()


def md5_of(path):
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(filename, folder, mirrors=MIRRORS, md5=None, timeout=30):
    """Fetch one official MNIST file into ``folder`` (once), verified by MD5.

    Mirrors are tried in order; a mirror that fails or serves a file with the wrong checksum is
    skipped. The file is written with :func:`vaelib.checkpoints.atomic_write` and kept only once
    verified, so nothing half-written is ever left under the real name.

    Returns:
        Path of the verified file.

    Raises:
        ConnectionError: if no mirror gave a good copy (for example when offline).
    """
    expected = md5 or MNIST_MD5[filename]
    folder = Path(folder)
    target = folder / filename
    if target.exists():
        if md5_of(target) == expected:
            return target
        target.unlink()  # a damaged cache entry: fetch it again
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            with atomic_write(target) as out, urllib.request.urlopen(url, timeout=timeout) as response:
                digest = hashlib.md5()
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                if digest.hexdigest() != expected:  # then atomic_write leaves nothing behind
                    raise ValueError(f"MD5 {digest.hexdigest()}, expected {expected}")
            return target
        except (urllib.error.URLError, OSError, ValueError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', e)}")
    raise ConnectionError(
        f"could not download {filename} from any mirror (are you offline?). "
        'Use load_mnist(source="bundled") for the subset that ships with vaelib. Tried:\n  '
        + "\n  ".join(failures))
