"""End to end in a real headless Chromium driven by selenium: upload, see the answer, see errors.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Skipped
with a reason when they are missing, except in CI (``CI=true``), where it must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import image_bytes, lesion_like

from webapp.app import create_app
from webapp.settings import DEFAULT_MODEL, Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# Screenshots go to the test's temporary folder; FCNN_SCREENSHOTS=reports refreshes the
# committed ones (reports/dermascan-e2e*.png) instead.
SCREENSHOTS = os.environ.get("FCNN_SCREENSHOTS")

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        pytest.fail(
            "CI must run the browser test: install chromium and chromium-driver", pytrace=False
        )
    pytest.skip(
        "headless browser test needs Debian's chromium and chromium-driver", allow_module_level=True
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_model):
    import uvicorn

    model = DEFAULT_MODEL if DEFAULT_MODEL.is_file() else tiny_model
    port = _free_port()
    config = uvicorn.Config(
        create_app(Settings(model_path=model, port=port)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=420,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _lesion_file(tmp_path: Path) -> Path:
    data = os.environ.get("FCNN_DATA")
    folder = Path(data) / "ham10000" / "HAM10000_images" if data else None
    if folder and folder.is_dir():
        return next(iter(sorted(folder.glob("*.jpg"))))
    path = tmp_path / "lesion.jpg"
    path.write_bytes(image_bytes(lesion_like(size=128)))
    return path


def _click(browser, element) -> None:
    """Click after scrolling the element to the middle, clear of the sticky disclaimer."""
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def test_upload_a_lesion_then_a_non_image(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(server + "/")
    disclaimer = browser.find_element(By.ID, "disclaimer")
    assert disclaimer.is_displayed() and "not a diagnosis" in disclaimer.text

    browser.find_element(By.ID, "file-input").send_keys(str(_lesion_file(tmp_path)))
    _click(browser, wait.until(ec.element_to_be_clickable((By.ID, "analyse"))))
    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    result = browser.find_element(By.ID, "result")
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
    assert len(bars) == 7  # present even when hidden for a "not skin" answer
    names = {
        "Actinic keratosis",
        "Basal cell carcinoma",
        "Benign keratosis",
        "Dermatofibroma",
        "Melanoma",
        "Mole (nevus)",
        "Vascular lesion",
    }
    shown = result.text
    not_skin = "does not look like a close-up photo" in shown
    assert not_skin or any(name in shown for name in names)
    if not not_skin:  # the bars show every class with its probability
        assert all(b.is_displayed() for b in bars)
        # the weighting note appears exactly when the answer is not the longest bar
        top = browser.find_element(By.ID, "top-name").text.removesuffix(" (uncertain)")
        first = bars[0].find_element(By.CSS_SELECTOR, "span").text
        note = browser.find_element(By.ID, "weighting-note")
        assert note.is_displayed() == (top != first)
    assert disclaimer.is_displayed()
    # no console errors: no failed request (the favicon included), no CSP violation
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "dermascan-e2e.png"))

    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a photo")
    browser.find_element(By.ID, "file-input").send_keys(str(notes))
    _click(browser, wait.until(ec.element_to_be_clickable((By.ID, "analyse"))))
    error = wait.until(ec.visibility_of_element_located((By.ID, "error")))
    assert "JPEG, PNG or WebP" in error.text
    assert not result.is_displayed()
    browser.save_screenshot(str(shots / "dermascan-e2e-error.png"))
    assert (shots / "dermascan-e2e-error.png").stat().st_size > 0
