"""The files an operator copies from deploy/: checked by the tools that read them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from webapp.guard import HSTS, SECURITY_HEADERS, nginx_snippet
from webapp.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _needs(*tools: str) -> pytest.MarkDecorator:
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed here: {', '.join(missing)}")


def test_nginx_sends_the_apps_security_headers_and_hides_the_apps_copies():
    snippet = (DEPLOY / "nginx" / "security-headers.conf").read_text()
    assert snippet == nginx_snippet()
    for name, value in SECURITY_HEADERS.items():
        assert f"proxy_hide_header {name};" in snippet
        assert f'add_header {name} "{value}" always;' in snippet
    assert f'add_header {HSTS[0]} "{HSTS[1]}" always;' in snippet
    # included once, at the server level, where no location overrides it
    site = (DEPLOY / "nginx" / "dermascan-site.conf").read_text()
    assert site.count("security-headers.conf;") == 1 and site.count("add_header") == 0


def test_nginx_limits_match_the_apps_settings():
    site = (DEPLOY / "nginx" / "dermascan-site.conf").read_text()
    env = (DEPLOY / "systemd" / "dermascan.env").read_text()
    body_mb = int(re.search(r"client_max_body_size (\d+)m;", site).group(1))
    assert f"DERMASCAN_MAX_BODY_MB={body_mb}\n" in env
    defaults = Settings()
    assert defaults.max_body_bytes == body_mb * 1024 * 1024
    idle = int(re.search(r"client_body_timeout (\d+)s;", site).group(1))
    assert idle == defaults.body_idle_s
    read = int(re.search(r"proxy_read_timeout (\d+)s;", site).group(1))
    assert read > defaults.request_timeout_s


@_needs("systemd-analyze", "fcnn")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    unit = (DEPLOY / "systemd" / "dermascan.service").read_text()
    # the unit names the install location; here, this machine's fcnn and no settings file
    unit = unit.replace("/opt/dermascan/venv/bin/fcnn", shutil.which("fcnn"))
    unit = unit.replace("EnvironmentFile=/etc/", "EnvironmentFile=-/etc/")
    path = tmp_path / "dermascan.service"
    path.write_text(unit)
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    for option in (
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "MemoryMax=",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert f"\n{option}" in unit  # fmt: skip


@_needs("systemd-analyze")
def test_systemd_analyze_verify_catches_a_misspelt_option(tmp_path):
    analyze = shutil.which("systemd-analyze")
    path = tmp_path / "bad.service"
    path.write_text("[Service]\nExecStart=/bin/true\nNoNewPrivilegez=yes\n")
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert "Unknown key" in done.stderr  # so the check above would see one


@_needs("hadolint")
def test_the_containerfile_passes_hadolint():
    # No container builder runs in CI (no daemon): the file is linted, not built.
    hadolint = shutil.which("hadolint")
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DEPLOY / "Containerfile")],
        capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
