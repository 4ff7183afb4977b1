"""Security defaults: admin lockout, password length, idle timeout, CSRF, CSP and the deploy check."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.factories import PaymentLinkLineFactory, StaffFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_admin_login_locks_after_ten_failures_even_with_the_right_password():
    StaffFactory(username="finance", password="correct-horse-battery", is_superuser=True)
    client = Client()
    for _ in range(10):
        client.post("/admin/login/", {"username": "finance", "password": "wrong-password-123"})
    response = client.post("/admin/login/", {"username": "finance", "password": "correct-horse-battery"}, follow=False)
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session
    assert settings.AXES_COOLOFF_TIME.total_seconds() >= 30 * 60


@pytest.mark.django_db
def test_admin_login_succeeds_before_the_limit():
    StaffFactory(username="finance", password="correct-horse-battery", is_superuser=True)
    client = Client()
    for _ in range(3):
        client.post("/admin/login/", {"username": "finance", "password": "wrong-password-123"})
    response = client.post("/admin/login/?next=/admin/", {"username": "finance", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_passwords_shorter_than_twelve_characters_are_refused():
    with pytest.raises(ValidationError):
        validate_password("Xk9#mQ2!vL4")  # 11 characters
    validate_password("Xk9#mQ2!vL4p")  # 12 characters: accepted


def test_sessions_expire_after_fifteen_idle_minutes():
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


@pytest.mark.django_db
def test_a_form_post_without_csrf_token_is_refused():
    line = PaymentLinkLineFactory(link__slug="amp")
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"/pay/{line.link.slug}/", {"email": "buyer@example.com", "quantity": 1})
    assert response.status_code == 403


@pytest.mark.django_db
def test_hosted_pages_send_a_strict_csp_and_refuse_framing(client):
    line = PaymentLinkLineFactory(link__slug="amp")
    response = client.get(f"/pay/{line.link.slug}/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert "<script" not in response.content.decode()


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`manage.py <args>` in a fresh interpreter with exactly `env` (settings are read at start-up)."""
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PLATFORM_IDENTITY = {
    "TOLLGATE_PLATFORM_LEGAL_NAME": "Example Platform s.r.o.",
    "TOLLGATE_PLATFORM_ADDRESS": "Street 1\\n110 00 Praha",
    "TOLLGATE_PLATFORM_VAT_ID": "CZ25596641",
}


def test_production_settings_pass_check_deploy():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "ci-dummy-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS",
        "DJANGO_ALLOWED_HOSTS": "pay.example.com",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        **PLATFORM_IDENTITY,
    }
    env.pop("DATABASE_URL", None)
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "DATABASE_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", "DJANGO_ALLOWED_HOSTS": "pay.example.com"})
    result = manage(env, "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_refuse_to_start_without_the_platform_identity():
    """Invoices carry the platform's name, address and VAT id: production has no demo defaults for them."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", *PLATFORM_IDENTITY)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_ALLOWED_HOSTS": "pay.example.com",
            "DJANGO_SECRET_KEY": "ci-dummy-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS",
        }
    )
    result = manage(env, "check")
    assert result.returncode != 0
    assert "TOLLGATE_PLATFORM_LEGAL_NAME" in result.stderr
