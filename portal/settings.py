"""Settings for the energy data portal.

Every value is read through one `env`. The defaults serve development: SQLite in
var/, a filesystem Celery broker that needs no server, and the two vendor
simulators on localhost. With DJANGO_DEBUG=False the portal refuses to start
without its secrets.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# .env first, so every value below (PORTAL_VAR_DIR too) may come from it; the process
# environment wins over the file. PORTAL_ENV_FILE names another file (tests use it).
ENV_FILE = Path(env.str("PORTAL_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(str(ENV_FILE))

# Local state of the embedded default: SQLite file, media, broker folders. Settings
# create no directory: `bootstrap` (run by `make run`) does.
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
# Vendor credentials are encrypted with this key (Fernet, urlsafe base64 of 32 bytes).
# In development it is derived from SECRET_KEY; production must set its own.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
if not DEBUG:
    for name, value in (("DJANGO_SECRET_KEY", SECRET_KEY), ("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)):
        if not value:
            raise ImproperlyConfigured(f"{name} must be set when DJANGO_DEBUG is False")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS: list[str] = [
    # Two-factor login: TOTP devices and one-time recovery codes (static tokens).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "core",
    "accounts",
    "sites",
    "uploads",
    "vendors",
    "dashboard",
    "audit",
    "mfa",
    "api",
    "notifications",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy and Permissions-Policy headers on every response.
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page but the login page (and /healthz) needs a session.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # request.user.is_verified(); then the second factor is asked for (or its set-up, when required).
    "django_otp.middleware.OTPMiddleware",
    "mfa.middleware.TwoFactorMiddleware",
    # Who is acting, for the audit trail written by services.
    "audit.middleware.AuditActorMiddleware",
    "accounts.middleware.CurrentOrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "accounts.context_processors.organizations",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# SQLite by default (WAL and a busy timeout so the web process and the worker can
# write side by side); DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT for the portal's queries: they are short, and a misestimated plan can cross
    # jit_above_cost and spend hundreds of milliseconds compiling a query that runs in two.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # A pool per process (psycopg-pool): a worker runs WORKER_CONCURRENCY threads, far more than
    # PostgreSQL's connections allow, and a push run gives its connection back between
    # checkpoints (core.db.connection_give_back), so a few connections serve them all.
    # DB_POOL_MAX_SIZE=0 turns the pool off (one persistent connection per thread, as before).
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=24)
    if DB_POOL_MAX_SIZE:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            "max_size": DB_POOL_MAX_SIZE,
            # A thread waits this long for a free connection before its task fails (and is retried).
            "timeout": env.float("DB_POOL_TIMEOUT", default=60.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it: close() gives back
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"
# Failed logins allowed per username and per client address inside the window.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
FORMS_URLFIELD_ASSUME_HTTPS = True
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        # Hashed and compressed; a missing source map of a vendored script is no error.
        else "core.storage.StaticFilesStorage"
    },
}

# --- Uploads ------------------------------------------------------------------
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
# A gzip upload may expand to at most this much (a zip bomb is refused, not unpacked).
UPLOAD_MAX_DECOMPRESSED_BYTES = env.int("UPLOAD_MAX_DECOMPRESSED_BYTES", default=4 * UPLOAD_MAX_BYTES)
# Small files are validated and stored in the request, larger ones by a worker. What
# decides is what is read, not the size on disk: a file up to INGEST_INLINE_MAX_BYTES
# is checked in the request only if it expands to at most INGEST_INLINE_MAX_DECOMPRESSED_BYTES,
# and the request hands the file over to a worker once it has read INGEST_INLINE_MAX_ROWS rows.
INGEST_INLINE_MAX_BYTES = env.int("INGEST_INLINE_MAX_BYTES", default=256 * 1024)
# Gas volume to energy is a convention (the heating value), so it is a setting, shown on every review
# page that uses it: 1 ccf = 1.037 therm (US average), 1 m³ = 10.55 kWh (gross calorific value).
GAS_CCF_TO_THERM = env.float("GAS_CCF_TO_THERM", default=1.037)
GAS_M3_TO_KWH = env.float("GAS_M3_TO_KWH", default=10.55)
# A zip of uploads: at most this many files, each expanding at most this many times its compressed size
# (the total is capped by UPLOAD_MAX_DECOMPRESSED_BYTES).
UPLOAD_ZIP_MAX_FILES = env.int("UPLOAD_ZIP_MAX_FILES", default=50)
UPLOAD_ZIP_MAX_RATIO = env.int("UPLOAD_ZIP_MAX_RATIO", default=200)
INGEST_INLINE_MAX_DECOMPRESSED_BYTES = env.int("INGEST_INLINE_MAX_DECOMPRESSED_BYTES", default=1024 * 1024)
INGEST_INLINE_MAX_ROWS = env.int("INGEST_INLINE_MAX_ROWS", default=20_000)
# Parsing and storing touch the upload's heartbeat this often; a heartbeat older than
# INGEST_STALE_SECONDS means the worker died, and the sweep (every INGEST_SWEEP_SECONDS)
# starts the work again: a dead worker is noticed within two minutes.
INGEST_HEARTBEAT_SECONDS = env.float("INGEST_HEARTBEAT_SECONDS", default=10.0)
INGEST_STALE_SECONDS = env.float("INGEST_STALE_SECONDS", default=90.0)
INGEST_SWEEP_SECONDS = env.float("INGEST_SWEEP_SECONDS", default=30.0)
# An upload still waiting for its validation this long after its task was sent gets the task
# again (a lost broker message must not leave it "Received" forever; a duplicate is harmless,
# the validation claims the upload once).
INGEST_RESEND_SECONDS = env.float("INGEST_RESEND_SECONDS", default=600.0)
# Files of refused (invalid) and cancelled uploads are deleted this many days after upload.
UPLOAD_RETENTION_DAYS = env.int("UPLOAD_RETENTION_DAYS", default=30)
# Bytes of uploaded files an organization may keep (Organization.storage_quota_bytes overrides).
UPLOAD_QUOTA_BYTES = env.int("UPLOAD_QUOTA_BYTES", default=5 * 1024 * 1024 * 1024)
# Files larger than this go to a temporary file rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Cache (login throttling, vendor tokens, per-meter push locks) ----------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # The database cache works across the web and worker processes without a server.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portal_cache"}}
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="portal")

# --- Celery -------------------------------------------------------------------
# REDIS_URL switches the broker to Redis; without it a filesystem transport (core/broker.py)
# carries the messages through var/broker, so `make run` needs no server.
BROKER_DIR = Path(env.str("PORTAL_BROKER_DIR", default=str(VAR_DIR / "broker")))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # kombu's filesystem transport with atomic writes and claims (core/broker.py).
    CELERY_BROKER_URL = "portalfs://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="portal")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A push must not be lost when a worker dies: acknowledge after the task ran, and
# take one message at a time so a dead worker holds nothing back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker's pool and size, in one place: `make run` (runportal), compose and the bench start
# `celery worker` without --pool/--concurrency, so these apply. Threads, because a push waits
# on the vendor (one packet per request, in order per stream): the streams in flight are the
# threads, and at a real vendor's 50 ms a stream moves 20 packets/s. 200 threads carry 200
# streams; the database pool (DB_POOL_MAX_SIZE) keeps them to a few connections.
CELERY_WORKER_POOL = "threads"
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=200)
CELERY_WORKER_CONCURRENCY = WORKER_CONCURRENCY
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-deliveries": {
        "task": "uploads.tasks.deliveries_requeue_stale_task",
        "schedule": env.float("STALE_DELIVERY_SWEEP_SECONDS", default=60.0),
    },
    "requeue-stale-uploads": {
        "task": "uploads.tasks.uploads_requeue_stale_task",
        "schedule": INGEST_SWEEP_SECONDS,
    },
    "purge-expired-upload-files": {
        "task": "uploads.tasks.uploads_purge_expired_task",
        "schedule": env.float("UPLOAD_RETENTION_SWEEP_SECONDS", default=3600.0),
    },
    "live-feeds-refresh": {
        "task": "notifications.tasks.feeds_refresh_task",
        "schedule": env.float("LIVE_FEED_CHECK_SECONDS", default=300.0),
    },
    "notifications-scan": {
        "task": "notifications.tasks.scan_task",
        "schedule": env.float("NOTIFICATION_SCAN_SECONDS", default=60.0),
    },
    "notifications-digest": {
        "task": "notifications.tasks.send_digests_task",
        "schedule": env.float("NOTIFICATION_DIGEST_SECONDS", default=24 * 3600.0),
    },
}

# --- Vendors ------------------------------------------------------------------
# Default base URLs; an organization's own credentials may name others.
WATTCARBON_BASE_URL = env.str("WATTCARBON_BASE_URL", default="http://127.0.0.1:8101")
# Wattics' production entry point; `make run`, docker compose and the tests point it at the simulator.
WATTICS_BASE_URL = env.str("WATTICS_BASE_URL", default="https://web-collector.wattics.com")
VENDOR_CONNECT_TIMEOUT = env.float("VENDOR_CONNECT_TIMEOUT", default=5.0)
VENDOR_READ_TIMEOUT = env.float("VENDOR_READ_TIMEOUT", default=30.0)
VENDOR_USER_AGENT = env.str("VENDOR_USER_AGENT", default="energy-data-portal/1.0")
# How long a delivery keeps retrying transient failures without progress before it is marked failed.
DELIVERY_RETRY_DEADLINE_SECONDS = env.int("DELIVERY_RETRY_DEADLINE_SECONDS", default=6 * 3600)
DELIVERY_RETRY_BASE_SECONDS = env.float("DELIVERY_RETRY_BASE_SECONDS", default=2.0)
DELIVERY_RETRY_MAX_SECONDS = env.float("DELIVERY_RETRY_MAX_SECONDS", default=300.0)
# A vendor's Retry-After is honoured up to this long.
DELIVERY_RETRY_AFTER_MAX_SECONDS = env.float("DELIVERY_RETRY_AFTER_MAX_SECONDS", default=120.0)
# Meter and device sync to WattCarbon: retries of transient failures (backoff with jitter).
WATTCARBON_SYNC_RETRY_BASE_SECONDS = env.float("WATTCARBON_SYNC_RETRY_BASE_SECONDS", default=2.0)
WATTCARBON_SYNC_RETRY_MAX_SECONDS = env.float("WATTCARBON_SYNC_RETRY_MAX_SECONDS", default=120.0)
# Rows per WattCarbon interval CSV upload (a year of 15-minute data is ~35,000 rows).
WATTCARBON_INTERVAL_CHUNK_ROWS = env.int("WATTCARBON_INTERVAL_CHUNK_ROWS", default=5000)
# A pushing delivery whose heartbeat is older than this has lost its worker: it is taken up again.
DELIVERY_STALE_SECONDS = env.int("DELIVERY_STALE_SECONDS", default=120)

# --- REST API (/api/v1/) ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First: its header makes an anonymous call a 401 with WWW-Authenticate: Api-Key.
        "api.access.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.access.HasOrganizationRole"],
    "DEFAULT_THROTTLE_CLASSES": ["api.access.PerCallerRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# Requests per API key (or session user); beyond it the API answers 429 with Retry-After.
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="1200/min")
# An Idempotency-Key's first answer is kept this long.
API_IDEMPOTENCY_DAYS = env.int("API_IDEMPOTENCY_DAYS", default=7)
SPECTACULAR_SETTINGS = {
    "TITLE": "Energy Data Portal API",
    "DESCRIPTION": "Sites, meters, devices, uploads and deliveries of one organization. "
    "Authenticate with `Authorization: Api-Key <key>` (keys are made by owners).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Like every page of the portal, the schema and docs need a key or a session.
    "SERVE_PERMISSIONS": ["api.access.HasOrganizationRole"],
    # Swagger UI from our own static files: no CDN, so it runs under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"TargetEnum": "uploads.models.Target"},
}

# --- Live feeds and notifications ------------------------------------------------
# A live meter is late when no reading came for two intervals plus this grace.
LIVE_FEED_GRACE_MINUTES = env.int("LIVE_FEED_GRACE_MINUTES", default=30)
# consolemail:// prints mail to the console (make run); smtp://user:pass@host:587/?tls=True for real.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
globals().update(EMAIL_CONFIG)  # EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS …
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
# Webhook deliveries: attempts, and the first backoff (doubled each time, with jitter).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

# --- make run (`bootstrap`, `runportal`) ----------------------------------------
DJANGO_SUPERUSER_USERNAME = env.str("DJANGO_SUPERUSER_USERNAME", default="admin")
# In production there is no default: `bootstrap` refuses to run without a strong one.
DJANGO_SUPERUSER_PASSWORD = env.str("DJANGO_SUPERUSER_PASSWORD", default="portal-admin" if DEBUG else "")
DJANGO_SUPERUSER_EMAIL = env.str("DJANGO_SUPERUSER_EMAIL", default="")
PORTAL_ADDR = env.str("PORTAL_ADDR", default="127.0.0.1:8000")

# --- Security -----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# X-Forwarded-Proto says "https" only when a reverse proxy we run sets it (and strips what
# the client sent); without one, any client could claim https. Compose sets it (Caddy in front).
BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): scripts, styles, images and requests from this
# origin only; no inline script or style, no eval, no framing, no plugins.
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
# Permissions-Policy (django-permissions-policy): the portal uses none of these browser features.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
}
# Two-factor login (django-otp): the issuer shown in authenticator apps.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Energy Data Portal")

# --- Accounts, vendor hosts, throttles (security in depth) ----------------------
# Previous Fernet keys, newest first: values stored with them are still read (MultiFernet),
# and written again with FIELD_ENCRYPTION_KEY on the next save.
FIELD_ENCRYPTION_KEYS_PREVIOUS = env.list("FIELD_ENCRYPTION_KEYS_PREVIOUS", default=[])
# Hosts (host or host:port) the worker may send vendor requests to: the vendors' published
# production and test hosts. Development adds the simulators' loopback addresses.
VENDOR_ALLOWED_HOSTS = env.list(
    "VENDOR_ALLOWED_HOSTS",
    default=["api.wattcarbon.com", "web-collector.wattics.com", "demo-dc.wattics.com", "dev-web-collector.wattics.com"]
    + (["127.0.0.1", "localhost", "[::1]"] if DEBUG else []),
)
# Non-public networks a vendor host may resolve to (CIDR). Everything else that is not a
# public address (loopback, private, link-local, cloud metadata) is refused at connect time.
VENDOR_ALLOWED_NETWORKS = env.list("VENDOR_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"] if DEBUG else [])
VENDOR_REQUIRE_HTTPS = env.bool("VENDOR_REQUIRE_HTTPS", default=not DEBUG)
# How much of a vendor's error text is kept and shown (tags and control characters removed).
VENDOR_ERROR_TEXT_MAX = env.int("VENDOR_ERROR_TEXT_MAX", default=500)
# Behind a reverse proxy: how many proxies append to X-Forwarded-For (0: use REMOTE_ADDR).
# The login throttle keys on the address the outermost trusted proxy saw.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Login throttle counters: Redis when set (atomic INCR that keeps its expiry), else this
# process's memory (`make run` is one process).
CACHES["throttle"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "login-throttle"}
)
CACHES["throttle"]["KEY_PREFIX"] = CACHES["default"]["KEY_PREFIX"]
# Password reset mail: the console under DEBUG, EMAIL_URL (e.g. smtp+tls://user:pass@host:587) otherwise.
if DEBUG and not env.str("EMAIL_URL", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    globals().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 3600)
# Columns a CSV upload may have: a header of 32,000 commas must not cost a 50 MB mapping page.
UPLOAD_MAX_COLUMNS = env.int("UPLOAD_MAX_COLUMNS", default=200)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
