"""What an operator sees of the site: health, readiness, metrics, access logs, self-test."""

import json
import logging

import pytest
from helpers import image_bytes, lesion_like
from litestar.testing import TestClient

from webapp.app import create_app
from webapp.metrics import Metrics, request_id
from webapp.service import Predictor, SelfTestError, self_test
from webapp.settings import Settings

TOKEN = "s3cret-token"


@pytest.fixture
def client(tiny_model):
    settings = Settings(model_path=tiny_model, metrics_token=TOKEN)
    with TestClient(create_app(settings)) as c:
        yield c


def _metrics(client) -> dict[str, float]:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _post(client, data, content_type="image/jpeg"):
    return client.post("/api/predict", files={"file": ("x.jpg", data, content_type)})


def test_live_and_ready_answer_once_the_self_test_passed(client, tiny_model):
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["model_file"] == tiny_model.name
    assert client.get("/health").status_code == 200  # the old endpoint keeps working


def test_metrics_count_requests_answers_and_rejections(client):
    photo = image_bytes(lesion_like(0), "JPEG")
    for _ in range(3):
        assert _post(client, photo).status_code == 200
    assert _post(client, b"GIF89a not a photo", "image/gif").status_code == 415
    client.get("/api/conditions/mel")
    got = _metrics(client)
    route = 'route="/api/predict"'
    assert got[f'dermascan_http_requests_total{{method="POST",{route},status="200"}}'] == 3
    assert got[f'dermascan_http_requests_total{{method="POST",{route},status="415"}}'] == 1
    assert got['dermascan_rejections_total{cause="415"}'] == 1
    # the route's template, never the path a client sent
    assert 'route="/api/conditions/{code}"' in " ".join(got)
    assert sum(v for k, v in got.items() if k.startswith("dermascan_answers_total")) == 3
    assert got["dermascan_decode_duration_seconds_count"] == 4  # the 415 was sniffed first
    assert got["dermascan_predict_duration_seconds_count"] == 3
    assert got["dermascan_uploads_in_progress"] == 0 and got["dermascan_decodes_in_progress"] == 0
    assert got["dermascan_decode_memory_bytes"] > 0  # the decoder processes' resident memory


def test_metrics_need_the_token_or_a_loopback_client_not_behind_a_proxy(client):
    assert client.get("/metrics").status_code == 404  # the test client is not loopback
    wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 404 and "dermascan" not in wrong.text
    assert "/metrics" not in client.get("/schema/openapi.json").text


def test_every_request_is_one_json_log_line_without_names_or_paths(client, caplog):
    caplog.set_level(logging.INFO, logger="dermascan.access")
    r = client.post(
        "/api/predict",
        files={"file": ("secret-name.jpg", image_bytes(lesion_like(1), "JPEG"), "image/jpeg")},
        headers={"X-Request-ID": "abc-123"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    client.get("/no/such/page?who=me")
    lines = [
        json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "dermascan.access"
    ]
    assert [(x["method"], x["route"], x["status"]) for x in lines] == [
        ("POST", "/api/predict", 200),
        ("GET", "unmatched", 404),
    ]
    assert lines[0]["request_id"] == "abc-123" and lines[0]["ms"] > 0
    # everything the site logged (the test client's own log names the URL it asked for)
    text = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("dermascan"))
    assert "secret-name" not in text and "who=me" not in text and "/no/such" not in text


def test_a_request_id_is_passed_on_only_when_it_is_a_plain_token():
    assert request_id([(b"x-request-id", b"0af7651916cd43dd8448eb211c80319c")]).startswith("0af7")
    odd = request_id([(b"x-request-id", b"<script>")])
    assert odd != "<script>" and len(odd) == 32


class _Broken:
    """A predictor whose answer is not a distribution."""

    def __init__(self, real: Predictor):
        self.model = real.model

    def predict(self, data):
        names = self.model.class_names
        return {
            "predictions": [{"code": c, "probability": 0.5} for c in names],
            "top": {"code": names[0]},
        }


def test_the_self_test_refuses_an_answer_that_is_not_a_distribution(tiny_model):
    import fcnn
    from webapp.service import load_conditions

    real = Predictor(fcnn.load(tiny_model), load_conditions())
    assert self_test(real)["top"]["code"] in real.model.class_names
    with pytest.raises(SelfTestError, match="not a distribution"):
        self_test(_Broken(real))


def test_without_prometheus_client_the_metrics_say_how_to_get_them():
    off = Metrics(enabled=False)
    off.request("/x", "GET", 200, 0.1)  # does nothing, raises nothing
    assert b"pip install 'fcnn[deploy]'" in off.exposition()
