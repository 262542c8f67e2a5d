"""The deployment as shipped in deploy/, run for real: Debian's nginx with deploy/nginx's
configuration (ports and paths moved to a temporary folder on loopback), in front of
``fcnn serve --workers 2``, under load from ``benchmarks.load``.

Needs nginx and openssl (``.ci/run`` installs Debian's nginx; elsewhere the module is
skipped with the reason) and the real HAM10000 photos the load test uploads.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from benchmarks.serving import free_port
from webapp.guard import SECURITY_HEADERS

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
STATIC = REPO / "webapp" / "static"
SHIPPED_MODEL = REPO / "webapp" / "model" / "dermascan.npz"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (.ci/run installs it: apt-get install nginx)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI runs the deployment test")
        pytest.skip(message)
    return path


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _wait_ready(url: str, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} was not ready within {seconds} s")


class Stack:
    """fcnn serve and nginx, started in ``root`` on free loopback ports."""

    def __init__(self, root: Path, model: Path):
        self.root = root
        self.app_port, self.http_port, self.tls_port = free_port(), free_port(), free_port()
        self.model = root / "model" / "dermascan.npz"
        self.model.parent.mkdir()
        shutil.copy(model, self.model)
        shutil.copy(model.with_name("MODEL_CARD.md"), self.model.with_name("MODEL_CARD.md"))
        env = {
            **os.environ,
            "DERMASCAN_PORT": str(self.app_port),
            "DERMASCAN_WORKERS": "2",
            "DERMASCAN_MODEL": str(self.model),
            "DERMASCAN_METRICS_DIR": str(root / "metrics"),
            "DERMASCAN_DRAIN_S": "20",
        }
        self.serve_log = open(root / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve"],
            cwd=REPO,
            env=env,
            stdout=self.serve_log,
            stderr=subprocess.STDOUT,
        )
        self.direct = f"http://127.0.0.1:{self.app_port}"
        self.proxied = f"http://127.0.0.1:{self.http_port}"
        _wait_ready(self.direct + "/health/ready")
        self._configure_nginx()
        self.nginx = subprocess.Popen(
            [_require("nginx"), "-p", str(root), "-c", str(root / "nginx.conf"), "-g",
             "daemon off;"],
            stderr=subprocess.PIPE,
        )  # fmt: skip
        _wait_ready(self.proxied + "/health/ready", 20)

    def _configure_nginx(self) -> None:
        root = self.root
        shutil.copytree(STATIC, root / "static")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-keyout", str(root / "key.pem"),
             "-out", str(root / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
        site = (DEPLOY / "nginx" / "dermascan-site.conf").read_text()
        site = site.replace("/srv/dermascan/static/", f"{root}/static/")
        site = site.replace("/etc/nginx/snippets/", f"{root}/")
        (root / "dermascan-site.conf").write_text(site)
        shutil.copy(DEPLOY / "nginx" / "security-headers.conf", root / "security-headers.conf")
        conf = (DEPLOY / "nginx" / "dermascan.conf").read_text()
        for old, new in [
            ("server 127.0.0.1:8000", f"server 127.0.0.1:{self.app_port}"),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.tls_port} ssl http2;"),
            ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
            ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.http_port};"),
            ("/etc/letsencrypt/live/dermascan.example.org/fullchain.pem", f"{root}/cert.pem"),
            ("/etc/letsencrypt/live/dermascan.example.org/privkey.pem", f"{root}/key.pem"),
            ("/etc/nginx/snippets/", f"{root}/"),
        ]:
            assert old in conf, old  # the shipped file still says what this test moves
            conf = conf.replace(old, new)
        conf = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", conf)  # loopback IPv4 only
        (root / "dermascan.conf").write_text(conf)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the temp folder
        (root / "nginx.conf").write_text(
            f"{user}worker_processes auto;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  include /etc/nginx/mime.types;\n  access_log off;\n"
            f"  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n"
            f"  include {root}/dermascan.conf;\n}}\n"
        )
        subprocess.run(
            [_require("nginx"), "-p", str(root), "-c", str(root / "nginx.conf"), "-t"],
            check=True, capture_output=True,
        )  # fmt: skip

    def metrics(self) -> dict[str, float]:
        status, body, _ = _get(self.direct + "/metrics")
        assert status == 200
        samples = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def predictions_counted(self) -> float:
        key = 'dermascan_http_requests_total{method="POST",route="/api/predict",status="200"}'
        return self.metrics().get(key, 0.0)

    def stop(self) -> None:
        for proc in (self.nginx, self.serve):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.nginx, self.serve):
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.serve_log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, real_data_root):
    _require("nginx")
    _require("openssl")
    s = Stack(tmp_path_factory.mktemp("deploy"), SHIPPED_MODEL)
    try:
        yield s
    finally:
        s.stop()


def _load(url: str, out: Path, seconds: float = 8.0, clients: int = 32) -> dict:
    """``benchmarks.load``'s result (``client_cpu_s`` in it: the CPU time its clients used
    while they sent)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--url", url, "--clients", str(clients),
         "--seconds", str(seconds), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return json.loads((out / "load.json").read_text())


def _tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by process ``root`` and its descendants still running."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


SENT: list[int] = []  # successful predictions this module sent, for the metrics check


def test_nginx_passes_the_load_without_errors_near_the_direct_throughput(stack, tmp_path):
    """Seven pairs of 5-second runs of 32 clients, direct and through nginx, the side going
    first alternating. On two cores the workers, nginx and the load clients share the CPU, so
    the throughput through nginx is the direct one times (CPU per request direct) / (CPU per
    request through nginx), every process counted (the site's, nginx's, the clients'). That
    ratio is taken in each pair, whose two runs are seconds apart, and the median of the
    seven is what is checked: a burst of other work on the machine during one run moves one
    pair, not the result. Requests per second themselves are printed: on this VM they swing
    by tens of percent between runs seconds apart (pairs from 0.62 to 1.46 were seen), which
    a wall-clock check at 0.9 would turn into a coin toss."""
    pairs, results = [], []
    for pair in range(7):
        seen = {}
        for side in ("direct", "nginx") if pair % 2 == 0 else ("nginx", "direct"):
            url = stack.direct if side == "direct" else stack.proxied
            app, proxy = _tree_cpu_s(stack.serve.pid), _tree_cpu_s(stack.nginx.pid)
            result = _load(url, tmp_path / f"{side}{pair}", seconds=5.0)
            app = _tree_cpu_s(stack.serve.pid) - app
            proxy = _tree_cpu_s(stack.nginx.pid) - proxy
            per_request = [x / max(result["requests"], 1) * 1e3
                           for x in (app, proxy, result["client_cpu_s"])]  # fmt: skip
            seen[side] = {"cpu_ms": per_request, "rate": result["requests_per_s"]}
            results.append(result)
            SENT.append(result["requests"])
        pairs.append(seen)
    assert [r["errors"] for r in results] == [0] * 14
    cpu_ratios = [sum(p["direct"]["cpu_ms"]) / sum(p["nginx"]["cpu_ms"]) for p in pairs]
    wall_ratios = [p["nginx"]["rate"] / p["direct"]["rate"] for p in pairs]
    for side in ("direct", "nginx"):
        app, proxy, clients = (statistics.median(p[side]["cpu_ms"][k] for p in pairs)
                               for k in range(3))  # fmt: skip
        print(
            f"{side}: CPU ms per request, medians: app {app:.2f}, nginx {proxy:.2f}, "
            f"clients {clients:.2f}"
        )
    print(f"throughput ratios from CPU per request {[round(r, 3) for r in cpu_ratios]}; "
          f"wall-clock requests/s ratios {[round(r, 2) for r in wall_ratios]}")  # fmt: skip
    assert statistics.median(cpu_ratios) >= 0.9


def _trickle(port: int, seconds: float, closed: list[float], stop: threading.Event) -> None:
    """A client sending its request header one byte a second; records when nginx answered
    it or closed the connection."""
    started = time.monotonic()
    header = b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.settimeout(1.0)  # the wait for a reply is the pause between two bytes
        for byte in header:
            if stop.is_set() or time.monotonic() - started > seconds:
                return
            try:
                sock.sendall(bytes([byte]))
                sock.recv(4096)  # a reply (408) or the end of the connection
            except TimeoutError:
                continue  # nginx still waits: send the next byte
            except OSError:
                pass  # reset: closed too
            closed.append(time.monotonic() - started)
            return


def test_slow_header_senders_are_closed_by_nginx_and_do_not_slow_the_others(stack, tmp_path):
    baseline = _load(stack.proxied, tmp_path / "baseline", seconds=8.0)
    SENT.append(baseline["requests"])
    closed: list[float] = []
    stop = threading.Event()
    slow = [
        threading.Thread(target=_trickle, args=(stack.http_port, 30.0, closed, stop), daemon=True)
        for _ in range(50)
    ]
    for t in slow:
        t.start()
    time.sleep(1.0)
    loaded = _load(stack.proxied, tmp_path / "with-slow", seconds=8.0)
    SENT.append(loaded["requests"])
    for t in slow:
        t.join(timeout=25)
    stop.set()
    assert loaded["errors"] == 0
    shut = sorted(closed) or [float("nan")]
    print(f"p95 {baseline['p95_ms']:.0f} ms alone, {loaded['p95_ms']:.0f} ms beside 50 slow; "
          f"the slow ones closed after {shut[0]:.1f}-{shut[-1]:.1f} s")  # fmt: skip
    assert loaded["p95_ms"] <= 1.5 * baseline["p95_ms"]
    # client_header_timeout is 10 s: every slow client was closed soon after it
    assert len(closed) == 50 and max(closed) < 16.0, sorted(closed)[-5:]


def test_a_50_mb_body_gets_nginx_413_before_the_app_sees_it(stack):
    before = stack.metrics()
    with socket.create_connection(("127.0.0.1", stack.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 52428800\r\n\r\n" + b"\0" * 65536
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413") and b"X-Frame-Options: DENY" in reply
    after = stack.metrics()
    posts = {k: v for k, v in after.items() if 'method="POST"' in k and "requests_total" in k}
    assert posts == {k: v for k, v in before.items() if k in posts}  # no POST reached the app


def test_metrics_are_not_reachable_through_nginx(stack):
    assert _get(stack.proxied + "/metrics")[0] == 404
    # nor by naming the app's address in a header: the proxied request is not loopback's own
    assert _get(stack.proxied + "/metrics", {"Host": f"127.0.0.1:{stack.app_port}"})[0] == 404


def test_static_files_come_from_nginx_with_cache_headers(stack):
    status, body, headers = _get(stack.proxied + "/static/app.js")
    assert status == 200 and body == (STATIC / "app.js").read_bytes()
    assert "max-age=3600" in headers.get("Cache-Control", "")


def test_every_response_carries_the_security_headers_once(stack):
    """Pages, the app's errors, nginx's files and nginx's own refusals alike."""
    for method, path in [("GET", "/"), ("GET", "/api/conditions/zzz"),
                         ("GET", "/static/app.js"), ("DELETE", "/api/predict")]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
        conn.request(method, path)
        response = conn.getresponse()
        names = [name.lower() for name, _ in response.getheaders()]
        conn.close()
        for name in SECURITY_HEADERS:
            assert names.count(name.lower()) == 1, (path, names)
        assert response.getheader("X-Frame-Options") == SECURITY_HEADERS["X-Frame-Options"]
    with socket.create_connection(("127.0.0.1", stack.http_port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")  # refused by nginx itself: 400
        reply = sock.recv(4096).lower()
    assert reply.startswith(b"http/1.1 400") and reply.count(b"\nx-frame-options: deny") == 1


def test_a_model_swap_under_load_drops_no_request(stack, tmp_path, tiny_model):
    _, body, _ = _get(stack.direct + "/health")
    old_sha = json.loads(body)["model_sha256"]
    # the operator's upgrade: the new file in place (atomically), then systemctl reload
    staged = stack.model.with_suffix(".new")
    shutil.copy(tiny_model, staged)
    os.replace(staged, stack.model)
    check = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--check", "--model", str(stack.model)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0 and check.stdout.startswith("ok:"), check.stdout + check.stderr
    result: dict = {}
    loader = threading.Thread(
        target=lambda: result.update(_load(stack.proxied, tmp_path / "swap", seconds=15.0))
    )
    loader.start()
    time.sleep(3.0)
    stack.serve.send_signal(signal.SIGHUP)  # what ExecReload sends
    loader.join()
    SENT.append(result["requests"])
    assert result["errors"] == 0, result["error_kinds"]
    _, body, _ = _get(stack.direct + "/health")
    assert json.loads(body)["model_sha256"] != old_sha  # the new model answers now


def test_the_metrics_count_every_prediction_sent(stack):
    """Every run above, direct and through nginx, across the reload: the POST /api/predict
    200s the app counted are the successful predictions the load clients saw (±0)."""
    assert SENT, "run with the module's other tests"
    assert stack.predictions_counted() == sum(SENT)


def test_check_fails_on_a_model_the_site_cannot_serve(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--check", "--model", str(bad)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr + done.stdout


def test_serve_exits_non_zero_when_no_worker_can_start(tmp_path):
    """A worker whose self-test fails (here: decoders allowed 1 kB of memory) stops the
    supervisor, and fcnn serve says so in its exit status and one line."""
    env = {**os.environ, "DERMASCAN_PORT": str(free_port()), "DERMASCAN_DECODE_MEMORY_MB": "0.001",
           "DERMASCAN_METRICS_DIR": str(tmp_path / "metrics")}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "a worker failed to start" in done.stderr
    assert time.monotonic() - started < 60
