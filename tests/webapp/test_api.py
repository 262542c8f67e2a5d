import base64
import hashlib
import io

import numpy as np
import pytest
from helpers import image_bytes, lesion_like
from litestar.testing import TestClient
from PIL import Image

from webapp.app import create_app, markdown_to_html
from webapp.settings import Settings

CODES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


@pytest.fixture
def client(tiny_model):
    with TestClient(create_app(Settings(model_path=tiny_model, max_body_bytes=2_000_000))) as c:
        yield c


def _post(client, data: bytes, content_type="image/jpeg", name="photo.jpg", **fields):
    files = {"file": (name, data, content_type)}
    return client.post("/api/predict", files=files, data=fields)


def test_health_and_conditions(client, tiny_model):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["classes"] == CODES
    # which model this really is: its file name and the start of its SHA-256
    digest = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert r.json()["model_file"] == tiny_model.name and r.json()["model_sha256"] == digest[:12]
    r = client.get("/api/conditions")
    assert [c["code"] for c in r.json()] == CODES
    assert all(
        {"name", "description", "appearance", "risk_level", "recommended_action"} <= set(c)
        for c in r.json()
    )
    assert client.get("/api/conditions/mel").json()["risk_level"] == "high"
    r = client.get("/api/conditions/xyz")
    assert r.status_code == 404 and "Known codes" in r.json()["detail"]


def test_predict_returns_all_classes_sorted_with_a_safe_answer(client):
    r = _post(client, image_bytes(lesion_like()))
    assert r.status_code == 200, r.text
    body = r.json()
    probs = [p["probability"] for p in body["predictions"]]
    assert sorted(p["code"] for p in body["predictions"]) == CODES
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert body["top"] == body["predictions"][0]
    assert body["risk_level"] in ("high", "medium", "low")
    assert body["uncertain_reason"] in (None, "low_confidence", "not_skin")
    assert body["uncertain"] == (body["uncertain_reason"] is not None)
    assert (body["model_version"] and "saliency_png" not in body) or body["saliency_png"] is None


def test_predict_answers_the_models_decision_for_the_photos_class(client, tiny_model):
    import fcnn
    from webapp.images import DecodeBudget, read_image

    model, right = fcnn.load(tiny_model), 0
    for c in range(7):
        # the fake training data's colour of class c (tests/helpers.write_ham)
        rng = np.random.default_rng(c)
        photo = np.clip(rng.normal([30 * c, 255 - 30 * c, 100], 5, (64, 64, 3)), 0, 255)
        data = image_bytes(photo.astype(np.uint8), "PNG")
        body = _post(client, data, "image/png").json()
        pixels = read_image(data, model.input_shape[1:], 3, max_pixels=10**8,
                            budget=DecodeBudget(2**26))  # fmt: skip
        mine = model.answers(pixels[None])[0]  # the library's answer on the same pixels
        assert body["top"]["code"] == model.class_names[mine.top]
        probs = {p["code"]: p["probability"] for p in body["predictions"]}
        np.testing.assert_allclose(
            [probs[n] for n in model.class_names], mine.probabilities, atol=1e-6
        )
        right += body["top"]["code"] == CODES[c]
    assert right >= 3  # 4 of 7 here; chance is 1: a model of 8 epochs on 12 lesions a class


def test_explain_adds_a_png_overlay(client):
    body = _post(client, image_bytes(lesion_like()), explain="true").json()
    png = Image.open(io.BytesIO(base64.b64decode(body["saliency_png"])))
    assert png.format == "PNG" and png.size == (224, 224) and not png.info.get("exif")


def test_blank_image_is_not_skin(client):
    body = _post(client, image_bytes(np.full((64, 64, 3), 230, np.uint8))).json()
    assert body["uncertain"] and body["uncertain_reason"] == "not_skin"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "words"),
    [
        (b"", "image/jpeg", 400, "empty"),
        (b"just some text", "text/plain", 415, "JPEG, PNG or WebP"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "image/jpeg", 400, "cannot be read"),
    ],
)
def test_bad_uploads_get_a_json_detail(client, data, content_type, status, words):
    r = _post(client, data, content_type)
    assert r.status_code == status and words in r.json()["detail"]
    assert client.get("/health").status_code == 200  # the server stays up


def test_truncated_image_is_400(client):
    data = image_bytes(lesion_like(size=300), quality=95)
    r = _post(client, data[: len(data) // 2])
    assert r.status_code == 400 and "damaged or cut off" in r.json()["detail"]


def test_missing_field_and_wrong_encoding_are_400(client):
    r = client.post("/api/predict", data={"explain": "true"})
    assert r.status_code == 400 and "field named 'file'" in r.json()["detail"]
    r = client.post("/api/predict", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["detail"]


def test_body_over_the_limit_is_413(client):
    r = _post(client, b"\xff" * 2_100_000)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


@pytest.mark.parametrize("size", [(12_000, 12_000), (20_000, 10_000)])
def test_decompression_bomb_is_413(client, size):
    bomb = Image.new("1", size)  # 144 and 200 megapixels (past Pillow's own limit), a few kB
    buf = io.BytesIO()
    bomb.save(buf, format="PNG")
    r = _post(client, buf.getvalue(), "image/png", "bomb.png")
    assert r.status_code == 413 and "pixels" in r.json()["detail"]


@pytest.mark.parametrize(
    ("fmt", "mode", "content_type"),
    [
        ("PNG", "L", "image/png"),
        ("PNG", "RGBA", "image/png"),
        ("PNG", "P", "image/png"),
        ("JPEG", "CMYK", "image/jpeg"),
        ("WEBP", None, "image/webp"),
        ("PNG", "I;16", "image/png"),
    ],
)
def test_image_modes_and_formats_all_work(client, fmt, mode, content_type):
    arr = lesion_like()
    if mode == "I;16":
        data = image_bytes((arr[..., 0].astype(np.uint16) * 257), fmt)
    else:
        data = image_bytes(arr, fmt, mode)
    r = _post(client, data, content_type, f"x.{fmt.lower()}")
    assert r.status_code == 200, r.text


def test_exif_rotated_photo_is_turned_upright(client, tiny_model):
    from fcnn.inference import load
    from webapp.service import Predictor, load_conditions

    arr = lesion_like(size=48)
    arr[:, :24] = [200, 40, 40]  # left half red
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    predictor = Predictor(load(tiny_model), load_conditions(), 0.45)
    upright = predictor.read(buf.getvalue(), (16, 16))
    assert upright[0, :8].mean() > upright[0, 8:].mean() + 50  # red moved to the top
    assert predictor.predict(buf.getvalue())["top"]["code"] in CODES
    assert _post(client, buf.getvalue()).status_code == 200


def test_phone_photo_of_48_megapixels(client):
    big = Image.fromarray(lesion_like(size=64)).resize((8000, 6000))
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=40)
    with TestClient(create_app(Settings(model_path=client.app.state.settings.model_path))) as c:
        r = _post(c, buf.getvalue())
    assert r.status_code == 200, r.text


def test_security_headers_and_errors_without_tracebacks(client):
    r = client.get("/")
    assert r.status_code == 200 and "Educational tool, not a diagnosis" in r.text
    for name in ("x-content-type-options", "x-frame-options", "content-security-policy"):
        assert name in r.headers
    assert "script-src 'self'" in r.headers["content-security-policy"]
    r = client.get("/nowhere")
    assert r.status_code == 404 and "detail" in r.json() and "Traceback" not in r.text
    assert client.get("/api/predict").status_code == 405


def test_about_page_renders_the_model_card(client):
    r = client.get("/about")
    assert r.status_code == 200 and "<strong>fake</strong>" in r.text


def test_markdown_is_escaped():
    assert "&lt;script&gt;" in markdown_to_html("a <script>alert(1)</script>")


def test_openapi_documents_the_multipart_upload(client):
    spec = client.get("/schema/openapi.json").json()
    body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["file"]["format"] == "binary"


def test_uploads_never_touch_the_disk(client, monkeypatch, tmp_path):
    import tempfile

    import litestar.datastructures.upload_file as upload_file

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was spooled to a temporary file")

    monkeypatch.setattr(upload_file, "SpooledTemporaryFile", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    big = image_bytes(
        np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8), "PNG"
    )
    assert len(big) > 1_000_000  # more than Litestar's 1 MB spool threshold
    r = _post(client, big, "image/png", "big.png")
    assert r.status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_one_pass_analysis_matches_predict_and_unfamiliar(tiny_model):
    from fcnn.inference import load

    model = load(tiny_model)
    images = np.stack([lesion_like(i, 16).transpose(2, 0, 1) for i in range(3)])
    images[2] = 128  # blank
    probs, reasons = model.analyse(images)
    np.testing.assert_allclose(probs, model.predict(images), rtol=1e-5)
    assert reasons == model.unfamiliar(images) and reasons[2] == "not_skin"


def test_the_answer_is_the_models_decision_not_always_the_longest_bar(tiny_model):
    import attrs

    from fcnn.decision import DecisionRule
    from fcnn.inference import load
    from webapp.service import Predictor, load_conditions

    model = load(tiny_model)
    weights = tuple(1e6 if code == "mel" else 1.0 for code in model.class_names)
    predictor = Predictor(
        attrs.evolve(model, decision=DecisionRule(weights, 1.0)), load_conditions(), 0.35
    )
    body = predictor.predict(image_bytes(lesion_like(), "PNG"))
    assert body["top"]["code"] == "mel"
    probs = [p["probability"] for p in body["predictions"]]
    assert probs == sorted(probs, reverse=True)  # the bars stay in probability order
    assert body["risk_level"] == "high"


def test_the_models_own_answer_rules_decide_uncertain_and_high_risk(tiny_model):
    import attrs

    from fcnn.decision import AnswerRules
    from fcnn.inference import load
    from webapp.service import RULES_OF_OLDER_MODELS, Predictor, load_conditions

    model = load(tiny_model)  # trained from configs/dermascan.yaml: its answer_rules stored,
    rules = model.answer_rules  # with high_risk_at and uncertain_below fitted on validation
    assert rules.uncertain_below != 0.35 and rules.high_risk_classes == ("akiec", "bcc", "mel")
    assert rules.high_risk_at is not None and rules.high_risk_at != 0.3
    photo = image_bytes(lesion_like(), "PNG")
    always = AnswerRules(uncertain_below=1.0, high_risk_classes=model.class_names, high_risk_at=0)
    body = Predictor(attrs.evolve(model, answer_rules=always), load_conditions()).predict(photo)
    assert body["uncertain"] and body["risk_level"] == "high"
    assert body["malignant_probability"] == pytest.approx(1.0, abs=1e-5)
    never = AnswerRules(uncertain_below=0.0)
    body = Predictor(attrs.evolve(model, answer_rules=never), load_conditions()).predict(photo)
    assert body["uncertain_reason"] != "low_confidence" and body["malignant_probability"] == 0
    # the site's setting overrides the model's threshold; an older model gets the old rules
    overridden = Predictor(attrs.evolve(model, answer_rules=never), load_conditions(), 1.0)
    assert overridden.rules.uncertain_below == 1.0 and overridden.predict(photo)["uncertain"]
    older = Predictor(attrs.evolve(model, answer_rules=None), load_conditions())
    assert older.rules == RULES_OF_OLDER_MODELS


def test_no_error_echoes_what_the_request_chose(client):
    marker = "zq" + "x" * 6000
    r = client.post("/api/predict", content=b"--b\r\n", headers={"Content-Type": f"text/{marker}"})
    assert r.status_code == 400 and "zq" not in r.text and len(r.text) < 300
    r = client.get(f"/static/{marker[:50]}.js")
    assert r.status_code == 404 and "zq" not in r.text
    r = client.get(f"/nowhere/{marker[:50]}")
    assert r.status_code == 404 and "zq" not in r.text


@pytest.mark.parametrize("path", ["/static/app.js%00.png", "/static/%01x", "/api/%00"])
def test_a_path_with_a_nul_or_control_character_is_404_not_500(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.json()["detail"].startswith("There is nothing")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_every_condition_names_a_risk_level_the_api_states():
    from webapp.service import load_conditions

    levels = {info["risk_level"] for info in load_conditions().values()}
    assert levels <= {"high", "medium", "low"} and levels
