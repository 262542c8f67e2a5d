"""The download path against a local HTTP server on 127.0.0.1."""

import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest

from fcnn.data import mnist
from fcnn.data.download import download
from fcnn.data.errors import DataError
from fcnn.data.idx import write_idx


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    truncate: set = set()
    hits: dict = {}

    def do_GET(self):
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.truncate:
            self.wfile.write(body[: len(body) // 2])  # then hang up: an interrupted transfer
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.truncate, _Handler.hits = {}, set(), {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_good_file_is_downloaded_and_verified(server, tmp_path):
    handler, base = server
    handler.files["/f.bin"] = b"hello" * 1000
    sha = hashlib.sha256(b"hello" * 1000).hexdigest()
    out = download([base + "/f.bin"], tmp_path / "f.bin", sha256=sha, backoff=0)
    assert out.read_bytes() == b"hello" * 1000
    assert _no_leftovers(tmp_path)


def test_corrupted_file_never_lands(server, tmp_path):
    handler, base = server
    handler.files["/f.bin"] = b"tampered"
    with pytest.raises(DataError, match="checksum mismatch"):
        download([base + "/f.bin"], tmp_path / "f.bin", sha256="0" * 64, retries=2, backoff=0)
    assert not (tmp_path / "f.bin").exists() and _no_leftovers(tmp_path)
    assert handler.hits["/f.bin"] == 2  # retried


def test_interrupted_transfer_never_lands_and_the_next_mirror_is_tried(server, tmp_path):
    handler, base = server
    body = bytes(range(256)) * 100
    handler.files["/a/f.bin"] = handler.files["/b/f.bin"] = body
    handler.truncate.add("/a/f.bin")
    sha = hashlib.sha256(body).hexdigest()
    out = download(
        [base + "/a/f.bin", base + "/b/f.bin"], tmp_path / "f.bin", sha256=sha, retries=2, backoff=0
    )
    assert out.read_bytes() == body and handler.hits["/a/f.bin"] == 2
    assert _no_leftovers(tmp_path)


def test_interrupted_everywhere_is_an_error_and_leaves_nothing(server, tmp_path):
    handler, base = server
    handler.files["/f.bin"] = b"x" * 5000
    handler.truncate.add("/f.bin")
    with pytest.raises(DataError, match="could not download f.bin"):
        download([base + "/f.bin"], tmp_path / "f.bin", sha256=None, retries=1, backoff=0)
    assert list(tmp_path.iterdir()) == []


def test_mnist_downloads_missing_files_into_the_cache(server, tmp_path, monkeypatch):
    handler, base = server
    rng = np.random.default_rng(0)
    raw = {
        "train-images-idx3-ubyte": write_idx(rng.integers(0, 255, (20, 28, 28))),
        "train-labels-idx1-ubyte": write_idx(np.arange(20) % 10),
        "t10k-images-idx3-ubyte": write_idx(rng.integers(0, 255, (5, 28, 28))),
        "t10k-labels-idx1-ubyte": write_idx(np.arange(5)),
    }
    for name, content in raw.items():
        handler.files[f"/mnist/{name}.gz"] = gzip.compress(content)
    files = {
        k: (name, hashlib.sha256(raw[name]).hexdigest()) for k, (name, _) in mnist.FILES.items()
    }
    monkeypatch.setattr(mnist, "FILES", files)
    train, test = mnist.load(tmp_path / "empty-root", mirrors=(base + "/mnist/",))
    assert train.images.shape == (20, 1, 28, 28) and len(test) == 5
    cached = mnist.cache_dir() / "data" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(raw)  # stored decompressed
    train2, _ = mnist.load(tmp_path / "empty-root", mirrors=("http://127.0.0.1:9/unused/",))
    np.testing.assert_array_equal(train2.images, train.images)  # second load: no network


def test_mnist_without_files_or_network_says_where_to_put_them(tmp_path):
    with pytest.raises(DataError, match="Put the four files") as info:
        mnist.load(tmp_path, allow_download=False)
    assert str(tmp_path / "mnist") in str(info.value)
