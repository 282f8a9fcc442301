"""vaelib.data: the bundled subset (shapes, ranges, stratified split, SHA-256 check), the IDX
reader (written against the format's description), and downloads, served only by a local HTTP
server on 127.0.0.1 that these tests start: never the web."""

import gzip
import hashlib
import http.server
import socket
import struct
import threading

import numpy as np
import pytest
import torch

import vaelib
from vaelib import checkpoints, data

# Digits per class in MNIST's official test set (t10k), from which the bundled subset is drawn.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- helpers -----------------------------------------------------------------------------------

def idx_bytes(array, type_code=0x08):
    """Encode ``array`` as an IDX file, straight from the format: 0x0000, type byte, ndim, sizes, data."""
    dtype = np.dtype(data._IDX_DTYPES[type_code])
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def fake_mnist(n, seed):
    """``n`` random uint8 28 x 28 images and labels 0..9, as the gzipped IDX files MNIST ships."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels, gzip.compress(idx_bytes(images)), gzip.compress(idx_bytes(labels))


def md5(raw):
    return hashlib.md5(raw).hexdigest()


def closed_port():
    """A port on 127.0.0.1 with nothing listening: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 and records the names requested; 404 otherwise."""

    def __init__(self):
        self.files = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):  # a proxy set in the environment must not see these requests
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    s = LocalServer()
    yield s
    s.close()


@pytest.fixture
def fake_test_split(server, monkeypatch):
    """Fake t10k files on the server, with vaelib's MD5 table pointing at them."""
    images, labels, image_gz, label_gz = fake_mnist(50, seed=0)
    server.files = {"t10k-images-idx3-ubyte.gz": image_gz, "t10k-labels-idx1-ubyte.gz": label_gz}
    monkeypatch.setattr(data, "MNIST_MD5", {**data.MNIST_MD5, **{k: md5(v) for k, v in server.files.items()}})
    return images, labels


def cache_listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the bundled subset ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled():
    return {split: data.load_mnist(split) for split in ("train", "test")}


@pytest.mark.parametrize("split, n", [("train", 8000), ("test", 2000)])
def test_bundled_shapes_dtypes_and_ranges(bundled, split, n):
    x, y = bundled[split]
    assert x.shape == (n, 784) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(y.tolist()) == set(range(10))
    assert torch.equal((x * 255).round() / 255, x)  # grey levels are k / 255 exactly
    images, labels = data.load_mnist(split, flatten=False)
    assert images.shape == (n, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(images.reshape(n, 784), x) and torch.equal(labels, y)


def test_bundled_split_is_stratified_and_disjoint(bundled):
    train_counts = torch.bincount(bundled["train"][1], minlength=10)
    test_counts = torch.bincount(bundled["test"][1], minlength=10)
    assert (test_counts > 0).all() and (train_counts > 0).all()
    # every digit is split 80/20 (to the nearest image) ...
    totals = train_counts + test_counts
    assert ((test_counts - 0.2 * totals).abs() <= 1).all(), (train_counts, test_counts)
    # ... so each digit's share is the same in both splits
    torch.testing.assert_close(train_counts / 8000, test_counts / 2000, rtol=0, atol=2e-3)
    # the 10,000 digits are MNIST's official test set, per class
    assert totals.tolist() == MNIST_TEST_COUNTS
    train_rows = {r.numpy().tobytes() for r in (bundled["train"][0] * 255).to(torch.uint8)}
    test_rows = {r.numpy().tobytes() for r in (bundled["test"][0] * 255).to(torch.uint8)}
    assert len(train_rows) == 8000 and len(test_rows) == 2000 and not train_rows & test_rows


def test_bundled_is_the_same_every_load(bundled):
    x, y = data.load_mnist("test")
    assert torch.equal(x, bundled["test"][0]) and torch.equal(y, bundled["test"][1])


def test_bundled_sha256_mismatch_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(data, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="damaged or was changed.*SHA-256.*reinstall"):
        data.load_mnist("train")


def test_tampered_bundled_file_is_rejected(tmp_path, monkeypatch):
    raw = bytearray(data.BUNDLED_FILE.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte
    tampered = tmp_path / "mnist_subset.npz"
    tampered.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "BUNDLED_FILE", tampered)
    with pytest.raises(ValueError, match=hashlib.sha256(raw).hexdigest()):
        data.load_mnist("test")


def test_missing_bundled_file(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "BUNDLED_FILE", tmp_path / "gone.npz")
    with pytest.raises(FileNotFoundError, match="bundled subset is missing"):
        data.load_mnist("test")


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "validation"}, 'split must be "train" or "test"'),
    ({"split": "TEST"}, 'split must be "train" or "test"'),
    ({"source": "web"}, 'source must be "bundled" or "full"'),
    ({"source": None}, 'source must be "bundled" or "full"'),
])
def test_bad_split_or_source(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load_mnist(**kwargs)


def test_bundled_fashion_mnist():
    for split, per_class in (("train", 500), ("test", 100)):
        x, y = data.load_fashion_mnist(split, flatten=False)
        assert x.shape == (10 * per_class, 1, 28, 28) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
        assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10
    assert len(data.FASHION_CLASSES) == 10


# --- the IDX reader ----------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("type_code, shape", [(0x08, (3, 28, 28)), (0x08, (7,)), (0x09, (4, 5)),
                                              (0x0B, (2, 3)), (0x0C, (6,)), (0x0D, (2, 2, 2)),
                                              (0x0E, (3, 1))],
                         ids=["uint8-images", "uint8-labels", "int8", "int16", "int32", "float32", "float64"])
def test_read_idx_round_trip(tmp_path, gzipped, type_code, shape):
    rng = np.random.default_rng(type_code)
    array = (rng.normal(size=shape) * 100).astype(np.dtype(data._IDX_DTYPES[type_code]))
    raw = idx_bytes(array, type_code)
    path = tmp_path / ("file.idx.gz" if gzipped else "file.idx")
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    got = data.read_idx(path)
    assert got.shape == shape
    assert got.flags.writeable  # torch.from_numpy warns on a read-only array
    np.testing.assert_array_equal(got, array)
    assert got.dtype.kind == array.dtype.kind and got.dtype.itemsize == array.dtype.itemsize


def test_read_idx_decodes_big_endian_sizes_and_values(tmp_path):
    # written by hand: type 0x0B (int16), 2 dimensions, sizes 1 and 2, values 258 and -2
    path = tmp_path / "tiny.idx"
    path.write_bytes(bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(data.read_idx(path), [[258, -2]])


def write(tmp_path, raw, name="bad.idx"):
    path = tmp_path / name
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("raw", [
    b"\x00\x01\x08\x01" + struct.pack(">I", 2) + b"ab",   # first two bytes not zero
    b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"ab",   # unknown type byte
    b"\x00\x00\x08\x00",                                  # zero dimensions
    b"PK\x03\x04" + bytes(20),                            # a zip file, not IDX
])
def test_read_idx_bad_magic(tmp_path, raw):
    with pytest.raises(ValueError, match="not an IDX file: bad magic number"):
        data.read_idx(write(tmp_path, raw))


@pytest.mark.parametrize("raw", [b"", b"\x00\x00"])
def test_read_idx_too_short(tmp_path, raw):
    with pytest.raises(ValueError, match="too short to be an IDX file"):
        data.read_idx(write(tmp_path, raw))


def test_read_idx_truncated_header(tmp_path):
    raw = idx_bytes(np.zeros((2, 28, 28), np.uint8))[:10]  # 3 dimensions need a 16-byte header
    with pytest.raises(ValueError, match="truncated: its header needs 16 bytes, it has 10"):
        data.read_idx(write(tmp_path, raw))


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("change", [-1, -784, +1, +784])
def test_read_idx_data_shorter_or_longer_than_header(tmp_path, gzipped, change):
    raw = idx_bytes(np.ones((3, 28, 28), np.uint8))
    raw = raw[:change] if change < 0 else raw + bytes(change)
    raw = gzip.compress(raw) if gzipped else raw
    with pytest.raises(ValueError, match=rf"holds {3 * 784 + change} bytes of data.*\(3, 28, 28\)"):
        data.read_idx(write(tmp_path, raw, "bad.idx.gz" if gzipped else "bad.idx"))


@pytest.mark.parametrize("cut", [10, 1000])
def test_read_idx_truncated_gzip(tmp_path, cut):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    raw = gzip.compress(idx_bytes(images))
    assert len(raw) > 2000  # random bytes hardly compress: cutting leaves a real, unfinished stream
    raw = raw[:-cut]
    with pytest.raises(ValueError, match="not a readable gzip file.*download again"):
        data.read_idx(write(tmp_path, raw, "bad.idx.gz"))


def test_read_idx_not_gzip_at_all(tmp_path):
    path = write(tmp_path, idx_bytes(np.ones((2, 2), np.uint8)), "plain-but-named.gz")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        data.read_idx(path)


# --- downloads, from a local server only -------------------------------------------------------

@pytest.mark.filterwarnings("error")  # e.g. torch's warning about a read-only NumPy array
def test_full_download_success_caches_and_reuses(server, fake_test_split, tmp_path):
    images, labels = fake_test_split
    cache = tmp_path / "cache"
    x, y = data.load_mnist("test", source="full", cache_dir=cache, mirrors=[server.url])
    assert x.shape == (50, 784) and x.dtype == torch.float32
    assert torch.equal(x, torch.from_numpy(images.reshape(50, 784)).float() / 255)
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    assert sorted(server.requests) == sorted(server.files)
    assert cache_listing(cache) == sorted(server.files)  # the two files, no temporary leftovers
    for name, raw in server.files.items():
        assert (cache / name).read_bytes() == raw
        assert (cache / name).stat().st_mode & 0o777 == checkpoints.default_file_mode()  # not mkstemp's 0o600

    server.requests.clear()
    x2, y2 = data.load_mnist("test", source="full", flatten=False, cache_dir=cache, mirrors=[server.url])
    assert server.requests == []  # served from the cache
    assert x2.shape == (50, 1, 28, 28) and torch.equal(x2.reshape(50, 784), x) and torch.equal(y2, y)


def test_full_download_checksum_mismatch_leaves_nothing(server, fake_test_split, tmp_path, monkeypatch):
    monkeypatch.setitem(data.MNIST_MD5, "t10k-images-idx3-ubyte.gz", "0" * 32)
    cache = tmp_path / "cache"
    with pytest.raises(ConnectionError, match=r"t10k-images-idx3-ubyte\.gz.*MD5 [0-9a-f]{32}, expected 0{32}"):
        data.load_mnist("test", source="full", cache_dir=cache, mirrors=[server.url])
    assert server.requests == ["t10k-images-idx3-ubyte.gz"]
    assert cache_listing(cache) == []  # neither the rejected file nor a .part file


def test_full_download_truncated_gzip_with_matching_md5(server, fake_test_split, tmp_path, monkeypatch):
    truncated = server.files["t10k-images-idx3-ubyte.gz"][:-50]
    server.files["t10k-images-idx3-ubyte.gz"] = truncated
    monkeypatch.setitem(data.MNIST_MD5, "t10k-images-idx3-ubyte.gz", md5(truncated))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz is not a readable gzip file"):
        data.load_mnist("test", source="full", cache_dir=tmp_path, mirrors=[server.url])


def test_full_download_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    offline = [f"http://127.0.0.1:{closed_port()}/mnist/", f"http://127.0.0.1:{closed_port()}/"]
    with pytest.raises(ConnectionError) as info:
        data.load_mnist("train", source="full", cache_dir=tmp_path / "cache", mirrors=offline)
    message = str(info.value)
    assert "offline" in message and 'source="bundled"' in message
    assert message.count("http://127.0.0.1:") == 2  # both mirrors named
    assert cache_listing(tmp_path / "cache") == []


@pytest.mark.parametrize("first", ["refusing", "404", "wrong file"])
def test_full_download_falls_back_to_the_next_mirror(server, fake_test_split, tmp_path, first):
    images, _ = fake_test_split
    other = None
    if first == "refusing":
        bad_url = f"http://127.0.0.1:{closed_port()}/"
    else:
        other = LocalServer()  # with no files it answers 404 to everything
        if first == "wrong file":
            other.files = {k: v[::-1] for k, v in server.files.items()}
        bad_url = other.url
    try:
        x, _ = data.load_mnist("test", source="full", cache_dir=tmp_path, mirrors=[bad_url, server.url])
    finally:
        if other is not None:
            other.close()
    if other is not None:
        assert sorted(other.requests) == sorted(server.files)  # the first mirror was tried for each file
    assert sorted(server.requests) == sorted(server.files)
    assert torch.equal(x, torch.from_numpy(images.reshape(50, 784)).float() / 255)
    assert cache_listing(tmp_path) == sorted(server.files)


def test_damaged_cached_file_is_downloaded_again(server, fake_test_split, tmp_path):
    images, _ = fake_test_split
    name = "t10k-images-idx3-ubyte.gz"
    (tmp_path / name).write_bytes(server.files[name][:-50])  # a damaged earlier download
    x, _ = data.load_mnist("test", source="full", cache_dir=tmp_path, mirrors=[server.url])
    assert name in server.requests
    assert (tmp_path / name).read_bytes() == server.files[name]
    assert torch.equal(x, torch.from_numpy(images.reshape(50, 784)).float() / 255)


def test_damaged_cache_and_no_mirror_removes_the_bad_file(tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    (tmp_path / name).write_bytes(b"not the real file")
    with pytest.raises(ConnectionError, match="offline"):
        data.download(name, tmp_path, mirrors=[f"http://127.0.0.1:{closed_port()}/"])
    assert cache_listing(tmp_path) == []


def test_full_images_and_labels_must_agree(server, tmp_path, monkeypatch):
    images, _, image_gz, _ = fake_mnist(5, seed=1)
    _, _, _, label_gz = fake_mnist(4, seed=2)
    server.files = {"train-images-idx3-ubyte.gz": image_gz, "train-labels-idx1-ubyte.gz": label_gz}
    monkeypatch.setattr(data, "MNIST_MD5", {k: md5(v) for k, v in server.files.items()})
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        data.load_mnist("train", source="full", cache_dir=tmp_path, mirrors=[server.url])


def test_full_fashion_mnist_uses_its_own_checksums(server, tmp_path, monkeypatch):
    images, labels, image_gz, label_gz = fake_mnist(20, seed=3)
    server.files = {"train-images-idx3-ubyte.gz": image_gz, "train-labels-idx1-ubyte.gz": label_gz}
    sums = {k: md5(v) for k, v in server.files.items()}
    monkeypatch.setattr(data, "FASHION_MD5", sums)
    x, y = data.load_fashion_mnist("train", source="full", cache_dir=tmp_path, mirrors=[server.url])
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    # MNIST's own table does not know these files: the MNIST loader must refuse them
    with pytest.raises(ConnectionError, match="MD5"):
        data.load_mnist("train", source="full", cache_dir=tmp_path / "mnist", mirrors=[server.url])


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELIB_DATA", str(tmp_path))
    assert data.default_cache_dir() == tmp_path / "mnist"
    assert data.default_cache_dir("fashion-mnist") == tmp_path / "fashion-mnist"


def test_binarize_true_gives_one_fixed_draw_of_zeros_and_ones():
    grey, labels = vaelib.load_mnist("test")
    binary, same_labels = vaelib.load_mnist("test", binarize=True)
    assert torch.equal(labels, same_labels) and binary.shape == grey.shape
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(binary, vaelib.load_mnist("test", binarize=True)[0]), "the same draw every call"
    assert binary[grey == 0].sum() == 0 and binary[grey == 1].min() == 1, "paper stays paper, full ink stays ink"
    assert abs(binary.mean().item() - grey.mean().item()) < 0.005, "ink with the grey level's probability"
    assert torch.equal(vaelib.load_mnist("test", flatten=False, binarize=True)[0].reshape(-1, 784), binary)
    fashion = vaelib.load_fashion_mnist("test", binarize=True)[0]
    assert set(fashion.unique().tolist()) == {0.0, 1.0}


def test_binarize_rejects_what_is_not_a_grey_level():
    with pytest.raises(ValueError, match="binarize must be True or False"):
        vaelib.load_mnist("test", binarize="yes")
    with pytest.raises(ValueError, match=r"grey levels in \[0, 1\]"):
        vaelib.data.binarize(torch.full((2, 784), 255.0))
    with pytest.raises(TypeError, match="floating-point"):
        vaelib.data.binarize(torch.zeros(2, 784, dtype=torch.uint8))
