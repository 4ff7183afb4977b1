"""Production: everything secret or deployment-specific comes from the environment, nothing defaults."""

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)
SANDBOX_WEBHOOK_SECRET = env("SANDBOX_WEBHOOK_SECRET", default=None)
if SANDBOX_ENABLED and not SANDBOX_WEBHOOK_SECRET:
    raise environ.ImproperlyConfigured("SANDBOX_ENABLED needs SANDBOX_WEBHOOK_SECRET")

# Printed on every invoice the platform issues: no demo defaults in production.
TOLLGATE_PLATFORM_LEGAL_NAME = env("TOLLGATE_PLATFORM_LEGAL_NAME")
TOLLGATE_PLATFORM_ADDRESS = env.str("TOLLGATE_PLATFORM_ADDRESS", multiline=True)
TOLLGATE_PLATFORM_VAT_ID = env("TOLLGATE_PLATFORM_VAT_ID")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
# The container health check speaks plain HTTP from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
