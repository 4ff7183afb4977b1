"""What `make run` uses: SQLite, eager Celery, the sandbox provider, e-mail on the console."""

from .base import *  # noqa: F403

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Throwaway values so a fresh clone runs offline; production.py takes these only from the environment.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-3b9f0c2e7d5a41f8a6e1c9b2d4f7a0e3c5b8d1f4")
SANDBOX_WEBHOOK_SECRET = env("SANDBOX_WEBHOOK_SECRET", default="whsec_sandbox_dev_only")
# django-ratelimit wants a shared cache; on one dev process the local-memory cache is enough.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
# Static files straight from the app and project folders (no collectstatic outside production).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
