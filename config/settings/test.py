"""Test settings: the same code as production; SQLite by default, PostgreSQL when DATABASE_URL is set."""

from .base import *  # noqa: F403

SECRET_KEY = "test-only-key-7c1d9e3f5a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PUBLIC_BASE_URL = "http://testserver"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Tests run tasks eagerly unless a test asks for the real worker (tests/conftest.py `celery_worker`);
# that worker process itself runs with TOLLGATE_TEST_EAGER=0 so the tasks it queues go to the broker too.
CELERY_TASK_ALWAYS_EAGER = env.bool("TOLLGATE_TEST_EAGER", default=True)
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
AXES_ENABLED = True
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_client": "100000/min"}}
# Static files straight from the app and project folders (no collectstatic outside production).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Every paid order and refund in the suite issues its invoice and credit notes (numbered, with VAT groups),
# but rendering ~100 ms of PDF for each would triple the suite: the invoicing tests turn it back on (fixture
# `documents_rendered`); elsewhere a PDF is rendered on first download.
TOLLGATE_RENDER_DOCUMENTS = env.bool("TOLLGATE_RENDER_DOCUMENTS", default=False)
