"""Settings shared by every environment.

Offline defaults (SQLite, eager Celery, sandbox provider) so that a fresh clone runs with no env vars;
`DATABASE_URL`, `CELERY_BROKER_URL` and `REDIS_URL` switch to PostgreSQL, real workers and a shared cache.
Secrets come only from the environment: `dev.py`/`test.py` supply throwaway values, `production.py` none.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default=None)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# Absolute base for links we hand to providers and e-mails (return and notification URLs).
PUBLIC_BASE_URL = env("TOLLGATE_PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "csp",
    "core",
    "ledger",
    "commissions",
    "payments",
    "payments.providers.sandbox",
    "refunds",
    "invoicing",
    "recurring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.RequestSizeLimitMiddleware",
    "core.middleware.CardDataGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.tollgate",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# No ATOMIC_REQUESTS: webhook views must commit the inbox row on their own, and services open
# `transaction.atomic` explicitly where they need one.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout so the dev server, the sandbox's self-delivered webhooks and a shell can
    # share the file; IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, throttles) ---------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default=None)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth and admin hardening (PCI DSS 8.x) ------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Re-login after 15 minutes idle: the session expires 15 minutes after the last request.
SESSION_COOKIE_AGE = 15 * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
LOGIN_URL = "portal:login"

# --- Content Security Policy: no inline scripts anywhere, no third-party origins -----------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Bodies above this are refused with 413 before anything parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- REST API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api_auth.IsApiClient"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.api_auth.ApiClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_client": env("TOLLGATE_API_RATE", default="600/min")},
    "UNAUTHENTICATED_USER": None,
}
RATELIMIT_VIEW = "core.views.ratelimited"
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "Tollgate API",
    "DESCRIPTION": (
        "Create payees and orders, read their status, cancel open orders. Every POST needs an "
        "`Idempotency-Key` header. Authenticate with `Authorization: Api-Key <key>`. Amounts are integers "
        "in the currency's minor unit (cents; yen have none)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "payments.models.OrderStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "LineKindEnum": "payments.models.LineKind",
        "PayeeKindEnum": "commissions.models.Payee.Kind",
        "PayeeStatusEnum": "commissions.models.Payee.Status",
        "VatCategoryEnum": "invoicing.vat.VatCategory",
        "RecurrenceStatusEnum": "recurring.models.RecurrenceStatus",
        "RecurrenceCycleEnum": "recurring.models.RecurrenceCycle",
        "RecurringChargeStatusEnum": "recurring.models.ChargeStatus",
        "RefundOutputStatusEnum": "refunds.models.RefundStatus",
        "RefundOutputReasonEnum": "refunds.models.RefundReason",
        "RefundOutputMethodEnum": "refunds.models.RefundMethod",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Api-Key <key>`",
            }
        }
    },
    "SECURITY": [{"ApiKeyAuth": []}],
    "AUTHENTICATION_WHITELIST": [],
}

# --- Celery -----------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=None)
# With no broker every task runs in-process right after the transaction that queued it commits
# (the in-memory transport is named only so that nothing tries to reach a default AMQP host).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# A message a dead worker took comes back after `visibility_timeout`, once a worker's sweep finds it: kombu
# sweeps every 10 s but scans Redis only every 10th time by default (~100 s); throttle 1 scans each time.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Keep our logging config (and its card-number filter) in workers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Email ------------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Tollgate <payments@tollgate.localhost>")

# --- Tollgate domain settings -----------------------------------------------------------------------
TOLLGATE_ENABLED_CURRENCIES = env.list(
    "TOLLGATE_ENABLED_CURRENCIES", default=["EUR", "CZK", "USD", "GBP", "PLN", "HUF", "JPY"]
)
TOLLGATE_PLATFORM_NAME = env("TOLLGATE_PLATFORM_NAME", default="Tollgate Marketplace")
TOLLGATE_PLATFORM_COUNTRY = env("TOLLGATE_PLATFORM_COUNTRY", default="CZ")
# The platform as an issuer: printed on commission invoices and in the "issued on behalf of" note.
TOLLGATE_PLATFORM_LEGAL_NAME = env("TOLLGATE_PLATFORM_LEGAL_NAME", default="Tollgate Marketplace s.r.o.")
TOLLGATE_PLATFORM_ADDRESS = env.str(  # lines separated by "\n" in the variable
    "TOLLGATE_PLATFORM_ADDRESS", default="Na Poříčí 1047/26\n110 00 Praha 1\nCzech Republic", multiline=True
)
TOLLGATE_PLATFORM_VAT_ID = env("TOLLGATE_PLATFORM_VAT_ID", default="CZ25596641")
# Commission: default in basis points; a payee may override it. VAT the platform charges on it.
TOLLGATE_DEFAULT_COMMISSION_BPS = env.int("TOLLGATE_DEFAULT_COMMISSION_BPS", default=1000)
TOLLGATE_COMMISSION_VAT_BPS = env.int("TOLLGATE_COMMISSION_VAT_BPS", default=2100)
TOLLGATE_ORDER_TTL = timedelta(minutes=env.int("TOLLGATE_ORDER_TTL_MINUTES", default=60))
# VAT ids: format and check digits always (python-stdnum, offline); a VIES lookup only when enabled (it needs
# a SOAP client such as zeep, not installed by default; without one the id stays "not confirmed with VIES").
# Render each issued document's PDF and e-mail it as soon as it is issued (the documents queue).
TOLLGATE_RENDER_DOCUMENTS = env.bool("TOLLGATE_RENDER_DOCUMENTS", default=True)
# How long a document's signed download link (e-mail, return page) works, in seconds (default 1 year).
TOLLGATE_DOCUMENT_LINK_MAX_AGE = env.int("TOLLGATE_DOCUMENT_LINK_MAX_AGE", default=365 * 24 * 3600)
TOLLGATE_VIES_ENABLED = env.bool("TOLLGATE_VIES_ENABLED", default=False)
TOLLGATE_VIES_TIMEOUT_SECONDS = env.int("TOLLGATE_VIES_TIMEOUT_SECONDS", default=10)
TOLLGATE_VIES_URL = env("TOLLGATE_VIES_URL", default="https://ec.europa.eu/taxation_customs/vies/rest-api")
TOLLGATE_ORDER_MAX_LINES = 100
TOLLGATE_IDEMPOTENCY_KEY_TTL = timedelta(hours=48)
# An in-flight idempotency record older than this belongs to a request that died; it may be taken over.
TOLLGATE_IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=60)
TOLLGATE_WEBHOOK_MAX_ATTEMPTS = 8
TOLLGATE_WEBHOOK_STUCK_AFTER = timedelta(minutes=2)
# The hourly backfill asks providers that list their events (Stripe) for undelivered ones this far back;
# Stripe retries a delivery for up to 3 days.
TOLLGATE_WEBHOOK_BACKFILL_WINDOW = timedelta(days=3)
TOLLGATE_WEBHOOK_PROCESSING_TIMEOUT = timedelta(minutes=10)

# Providers, by name -> dotted path of the adapter class. A provider is offered at checkout only when
# listed in TOLLGATE_CHECKOUT_PROVIDERS and configured.
TOLLGATE_PROVIDERS = {
    "sandbox": "payments.providers.sandbox.adapter.SandboxProvider",
    "stripe": "payments.providers.stripe.adapter.StripeProvider",
    "gopay": "payments.providers.gopay.adapter.GoPayProvider",
    "store_credit": "payments.providers.store_credit.adapter.StoreCreditProvider",
}
# `store_credit` is not a choice among the others: the checkout page shows a box for the code instead.
TOLLGATE_CHECKOUT_PROVIDERS = env.list(
    "TOLLGATE_CHECKOUT_PROVIDERS", default=["gopay", "stripe", "sandbox", "store_credit"]
)
# Store credit (refunds/store_credit.py): how long a credit lasts when its refund policy does not say.
TOLLGATE_STORE_CREDIT_ENABLED = env.bool("TOLLGATE_STORE_CREDIT_ENABLED", default=True)
TOLLGATE_STORE_CREDIT_VALIDITY = timedelta(days=env.int("TOLLGATE_STORE_CREDIT_VALIDITY_DAYS", default=365))

# Stripe: on when a secret key and at least one webhook secret are set. Several webhook secrets (comma-
# separated) while one is rolled, and for the Connect endpoint's own secret.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRETS", default=[])
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_WEBHOOK_TOLERANCE = 300
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)

# Sandbox gateway: its webhook secret (HMAC-SHA256) and where it delivers events.
SANDBOX_WEBHOOK_SECRET = env("SANDBOX_WEBHOOK_SECRET", default=None)
SANDBOX_WEBHOOK_TOLERANCE = 300
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)

# --- Logging: never bodies, never card-like numbers, never secrets ---------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "card_data": {"()": "core.card_guard.CardNumberLogFilter"},
        "request_id": {"()": "core.middleware.RequestIdLogFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["card_data", "request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # runserver's request log carries the query string: route it through the masking filter too.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "celery": {"level": env("CELERY_LOG_LEVEL", default=env("LOG_LEVEL", default="INFO"))},
        # PDF rendering (evidence packs) logs every step and every font subset at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Finance staff who get operational alerts (authorizations about to lapse, recurring charges given up on).
TOLLGATE_STAFF_EMAILS = env.list("TOLLGATE_STAFF_EMAILS", default=[])

# GoPay: on when the GoID and the OAuth client id and secret are set. The sandbox gateway by default.
GOPAY_GOID = env.int("GOPAY_GOID", default=0)
GOPAY_CLIENT_ID = env("GOPAY_CLIENT_ID", default="")
GOPAY_CLIENT_SECRET = env("GOPAY_CLIENT_SECRET", default="")
GOPAY_GATEWAY_URL = env("GOPAY_GATEWAY_URL", default="https://gw.sandbox.gopay.com/api")
GOPAY_TIMEOUT = env.int("GOPAY_TIMEOUT", default=20)  # seconds; the SDK's own default is an hour
GOPAY_ALLOWED_INSTRUMENTS = env.list(
    "GOPAY_ALLOWED_INSTRUMENTS", default=["PAYMENT_CARD", "BANK_ACCOUNT", "GPAY", "APPLE_PAY", "TWISTO", "SKIPPAY"]
)
# GoPay refuses to refund card payments past a limit (error PAYMENT_REFUND_NOT_SUPPORTED); staff are told
# before anything is sent. The limit is GoPay's, per contract: set it to what yours says.
GOPAY_CARD_REFUND_MAX_AGE = timedelta(days=env.int("GOPAY_CARD_REFUND_MAX_AGE_DAYS", default=180))
# A pre-authorized card hold lapses after 4 days; staff are warned this long before.
GOPAY_AUTHORIZATION_LIFETIME = timedelta(days=4)
GOPAY_AUTHORIZATION_WARN_BEFORE = timedelta(days=1)
# An on-demand recurrence must name its last day; GoPay refuses charges after it.
GOPAY_RECURRENCE_DATE_TO = env("GOPAY_RECURRENCE_DATE_TO", default="2099-12-31")

# --- Refunds (refunds/) ------------------------------------------------------------------------------
# Maker-checker: a refund returning more than this (minor units, per currency) to the buyer stays `requested`
# until a second staff user with `refunds.approve_refund` approves it. Currencies not listed use "default"
# (EUR-like minor units); set a currency to 0 to require approval for every refund in it.
# Payout runs whose total in a currency exceeds this (minor units) wait for a second staff user's approval.
TOLLGATE_PAYOUT_APPROVAL_THRESHOLD = {
    "EUR": 1000000,
    "USD": 1000000,
    "GBP": 1000000,
    "CZK": 25000000,
    "PLN": 4000000,
    "HUF": 400000000,
    "JPY": 150000000,
}
# The platform's bank account SEPA credit transfers leave from (pain.001 debtor).
TOLLGATE_SEPA_DEBTOR_NAME = env("TOLLGATE_SEPA_DEBTOR_NAME", default="Tollgate Marketplace s.r.o.")
TOLLGATE_SEPA_DEBTOR_IBAN = env("TOLLGATE_SEPA_DEBTOR_IBAN", default="CZ6508000000192000145399")
TOLLGATE_SEPA_DEBTOR_BIC = env("TOLLGATE_SEPA_DEBTOR_BIC", default="GIBACZPX")
TOLLGATE_REFUND_APPROVAL_THRESHOLD = {
    "EUR": 50000,
    "USD": 50000,
    "GBP": 50000,
    "CZK": 1250000,
    "PLN": 200000,
    "HUF": 20000000,
    "JPY": 80000,
    "default": 50000,
}

# --- Recurring payments (recurring/) -----------------------------------------------------------------
# A failed recurring charge is retried after each of these delays in turn (so 1 + len attempts in all), then
# abandoned and reported to staff. A charge's order stays open for the whole schedule (then it is canceled).
RECURRING_RETRY_SCHEDULE = [timedelta(hours=1), timedelta(days=1), timedelta(days=3)]
RECURRING_CHARGE_ORDER_TTL = timedelta(days=30)
# An attempt claimed this long ago with no answer recorded (a worker died mid-call) is in doubt: staff check.
RECURRING_IN_DOUBT_AFTER = timedelta(minutes=10)
