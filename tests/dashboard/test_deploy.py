"""Production settings pass Django's deploy checks, and no asset comes from a CDN."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
ASSET_RE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def test_check_deploy_is_clean_with_production_settings() -> None:
    # A production process would not carry the browser tests' DJANGO_ALLOW_ASYNC_UNSAFE.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **inherited,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "durable.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_templates_load_no_remote_assets() -> None:
    templates = [*ROOT.joinpath("templates").rglob("*.html"), *ROOT.joinpath("executions").rglob("*.html")]
    assert templates
    offenders = [str(path) for path in templates if ASSET_RE.search(path.read_text())]
    assert offenders == []


def test_vendored_scripts_are_present_and_referenced(op_client: Client) -> None:
    vendor = ROOT / "static" / "vendor"
    assert (vendor / "plotly-basic-4.1.1.min.js").stat().st_size > 1_000_000
    assert (vendor / "htmx.min.js").stat().st_size > 10_000
    page = op_client.get(reverse("executions:list")).content.decode()
    assert re.search(r"/static/vendor/htmx\.min\.[0-9a-f]{12}\.js", page) and not ASSET_RE.search(page)
