"""Herald settings: one module, configured only by environment variables.

Required in production: ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``. With ``DEBUG=true``
(development mode) local defaults are used for all three. ``settings_test`` overrides a few values
for the test suite; there are no other settings modules.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from herald.env import (
    env_bool,
    env_cidrs,
    env_durations,
    env_float,
    env_int,
    env_ints,
    env_raw,
    env_seconds,
    env_str,
    parse_email_url,
)
from herald.logs import log_format
from notifications.channels.push.vapid import vapid_key_refusal, vapid_subject_valid

# Django's generic classes (ModelAdmin, QuerySet, ...) take type arguments at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parents[2]

DEBUG = env_bool("DEBUG", default=False)

# Only ever used with DEBUG on; without DEBUG a missing SECRET_KEY stops the app (below).
_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_raw("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured("SECRET_KEY is too weak for production: use 32+ random characters.")

# Keys that encrypt secrets the server must read back (webhook signing secrets; see
# herald.encryption): Fernet keys, comma-separated, newest first; older ones only decrypt.
# Empty: one key derived from SECRET_KEY.
HERALD_ENCRYPTION_KEYS = [
    key for key in (env_raw("HERALD_ENCRYPTION_KEYS") or "").replace(" ", "").split(",") if key
]
for _key in HERALD_ENCRYPTION_KEYS:
    try:
        if len(base64.urlsafe_b64decode(_key.encode())) != 32:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            "HERALD_ENCRYPTION_KEYS holds a key that is not urlsafe base64 of 32 bytes. Generate "
            "one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`."
        ) from None

PLATFORM_HOST = env_str("PLATFORM_HOST", "localhost").lower()
# Hosts are validated by tenants.resolution against the Domain table (unknown host: 404), so
# Django's own check would only turn a known custom domain into a 400.
ALLOWED_HOSTS = ["*"]

_DEV_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/herald"
_DEV_REDIS_URL = "redis://127.0.0.1:6379/0"
DATABASE_URL = env_str("DATABASE_URL", _DEV_DATABASE_URL if DEBUG else None)
REDIS_URL = env_str("REDIS_URL", _DEV_REDIS_URL if DEBUG else None)

# --- Applications: public schema vs. each tenant's schema -----------------------------------
SHARED_APPS = [
    "tenants",  # before django_tenants: its `migrate` also migrates the template schema
    # Before django_tenants too: its admin templates (which hide tenant-only apps, none of which
    # registers an admin here) need a tenant object on the request, and the platform host has none.
    "django.contrib.admin",
    "django_tenants",
    "billing_stub",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "accounts",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "api_docs",
    "dashboard",
    "widget",
]
# Not auth or contenttypes: no tenant uses Django permissions (see accounts.models), and their
# tables would be a fifth of every tenant schema's relations.
TENANT_APPS = [
    "accounts",
    "django.contrib.sessions",
    "notifications",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# Schema every new tenant is cloned from; `migrate` keeps it current (see tenants.schema).
TENANT_TEMPLATE_SCHEMA = "tenant_template"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# Issue `SET search_path` once per schema switch, not before every query.
TENANT_LIMIT_SET_CALLS = True
# Worker processes of a migration roll-out over the tenant schemas (`migrate`, `tenants_migrate`);
# 0: one per CPU, at most 8.
TENANT_MIGRATE_PARALLEL = env_int("TENANT_MIGRATE_PARALLEL", 0)
if TENANT_MIGRATE_PARALLEL < 0:
    raise ImproperlyConfigured("TENANT_MIGRATE_PARALLEL must be 0 (one per CPU) or more.")
# Schemas built from the template ahead of sign-ups (tenants.spares): a sign-up renames one
# instead of building its ~110 relations. Beat, and each sign-up that takes one, top the pool
# up; each spare costs about 0.8 MiB of disk. 0: no pool, every sign-up builds its schema.
TENANT_SPARE_SCHEMAS = env_int("TENANT_SPARE_SCHEMAS", 5)
if TENANT_SPARE_SCHEMAS < 0:
    raise ImproperlyConfigured("TENANT_SPARE_SCHEMAS must be 0 (no spares) or more.")
AUTH_USER_MODEL = "accounts.User"

MIDDLEWARE = [
    # Outermost: every response, whoever answers it, echoes the request id (X-Request-ID), and
    # every log line of the request names it; then the request's own log line.
    "herald.request_ids.RequestIdMiddleware",
    # Counts and times every response, refusals by later middleware included.
    "herald.metrics.HttpMetricsMiddleware",
    # First: answers CORS preflights (no credential, so no tenant resolution or rate limit) and
    # adds CORS headers to every /api/v1/ response, errors included (see widget/cors.py).
    "widget.cors.CorsMiddleware",
    "herald.ratelimits.RateLimitHeadersMiddleware",
    # Static files answer on any host, before tenant resolution (they hold nothing of a tenant).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # NUL and bytes that are not UTF-8 in a path, query or form: 400 before anything looks
    # them up (after CORS and rate-limit headers, so the widget can read the refusal).
    "herald.edge.InvalidTextMiddleware",
    # Errors views answer without raising (a bare 405, a docs page's HTML error), as JSON.
    "herald.errors.ErrorShapeMiddleware",
    "tenants.middleware.TenantResolutionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "dashboard.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]  # run in sync mode under ASGI too (herald.handlers.SyncASGIHandler)

ROOT_URLCONF = "herald.urls"
PUBLIC_SCHEMA_URLCONF = "herald.urls_public"
ASGI_APPLICATION = "herald.asgi.application"
WSGI_APPLICATION = "herald.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        engine="tenants.postgresql_backend",  # django-tenants', with connections retired
        # 0 under ASGI, as Django's docs advise: each request's sync code runs in a thread context
        # of its own, so a "persistent" connection is never reused and lingers until garbage
        # collection (bench/realtime.py exhausted max_connections with 60). The pool below is
        # how web processes reuse connections.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
    "DATABASE_CONNECT_TIMEOUT", 5
)
# PostgreSQL's default random_page_cost (4) prices spinning disks; on SSD-backed servers (managed
# PostgreSQL included) 1.1 is the usual value. With 4 the planner walks the primary key backwards
# for a user with many notifications (109 ms for a page at 1M rows) instead of using the
# (recipient, -id) inbox index (0.12 ms); see bench/send_and_inbox.py.
DATABASES["default"]["OPTIONS"]["options"] = (
    f"-c random_page_cost={env_float('DATABASE_RANDOM_PAGE_COST', 1.1)}"
)
# A psycopg connection pool per process. The ASGI entry point turns it on: a web process serves
# each request from a thread of its own, and opening a connection per request cost ~3 ms of the
# API's latency floor (bench/send_and_inbox.py). Celery children run one task at a time and fork
# from a parent, so they keep plain connections. django-tenants re-issues ``SET search_path`` on
# every connection it takes from the pool (its ``close()`` forgets the schema it had set).
if env_bool("DATABASE_POOL", False):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 3),
    }
# A PostgreSQL backend keeps the catalog entries of every schema it has served (about 80 KiB each,
# bench/tenants.py): a connection is closed once it has entered this many distinct tenant schemas,
# which bounds each backend's memory (tenants.postgresql_backend). 0: never.
DATABASE_MAX_SCHEMAS_PER_CONNECTION = env_int("DATABASE_MAX_SCHEMAS_PER_CONNECTION", 200)

# Short socket timeouts: a Redis outage must fail requests fast (and /readyz with it), not hang.
REDIS_SOCKET_TIMEOUT = 2
# Every Redis key and channel of this deployment starts with the namespace (herald.redisio);
# empty: ``herald:<database name>``. Deployments sharing a Redis and a database name set one each.
REDIS_NAMESPACE = env_str("REDIS_NAMESPACE", "")
# herald.redisio.namespace() reads it at each call; the caches need it now (same default).
_REDIS_NAMESPACE = REDIS_NAMESPACE or f"herald:{DATABASES['default']['NAME']}"
CACHES = {
    "default": {
        "BACKEND": "herald.cache.RedisCache",  # Django's, sharing connections (see the module)
        "LOCATION": REDIS_URL,
        # Under the deployment's namespace, as every other key; tests give each run its own.
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", f"{_REDIS_NAMESPACE}:cache"),
        "OPTIONS": {
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        },
    }
}
# The tenant registry cache (tenants.registry_cache). Its own key space in the namespace, so
# every process of the deployment shares it (tests give "default" a key space per test).
CACHES["registry"] = {**CACHES["default"], "KEY_PREFIX": f"{_REDIS_NAMESPACE}:registry"}

# --- Web processes -------------------------------------------------------------------------------
# A process holding 1,000 WebSockets keeps ~200,000 objects, and each full garbage collection
# walks them all with the event loop stopped: 110 to 225 ms, several times a minute under sends
# (bench/realtime.py). Every WEB_GC_FREEZE_SECONDS (0: never) the process collects what is new
# and freezes what survives, so that later collections skip the open connections; once an hour
# it thaws and walks everything (see herald.gc_policy).
WEB_GC_FREEZE_SECONDS = env_float("WEB_GC_FREEZE_SECONDS", 10.0)
# The collector's thresholds (generations 0, 1, 2), set by herald.asgi; Python's by default.
# A larger third one (700,10,1000) also removes most full collections, but leaves a request's
# reference cycles in memory until the next one: +8 MiB a minute under sends.
WEB_GC_THRESHOLDS = env_ints("WEB_GC_THRESHOLDS", (700, 10, 10))
# Long-lived threads that run HTTP requests' sync code, one request at a time each (see
# herald.handlers); more concurrent requests wait for one. Keep it at most the database pool's
# size (DATABASE_POOL_MAX_SIZE), or requests beyond the pool wait for a connection instead.
WEB_THREADS = env_int("WEB_THREADS", 10)

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 5, "socket_timeout": 30}
# Redis redelivers an unacknowledged task after this long. Long holds (send_at, digest windows)
# live in the database, never as broker countdowns; retries wait at most DELIVERY_RETRY_MAX_SECONDS.
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = 3600
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "herald")
# A worker reserves only the task it runs (with acks_late), so a turn of a quiet tenant is never
# stuck in a busy worker's prefetch while an idle worker could take it.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# How often beat gives a turn to tenants with email ready and none queued or running: with a
# turn's lease, it bounds how long a dead worker's work waits (lease + sweep interval).
EMAIL_SWEEP_SECONDS = env_float("EMAIL_SWEEP_SECONDS", 10.0)
CELERY_BEAT_SCHEDULE = {
    "release-due-sends": {"task": "notifications.release_due_sends", "schedule": 5.0},
    "sweep-deliveries": {"task": "notifications.sweep_deliveries", "schedule": EMAIL_SWEEP_SECONDS},
    "close-due-digests": {"task": "notifications.close_due_digests", "schedule": 10.0},
    "rollup-usage": {"task": "billing.rollup_usage", "schedule": 60.0},
    "fill-spare-schemas": {"task": "tenants.fill_spare_schemas", "schedule": 60.0},
}
# Other intervals, per job: BEAT_INTERVALS="rollup-usage=120,..." (the tests shorten them all).
for _job, _seconds in env_durations("BEAT_INTERVALS").items():
    if _job not in CELERY_BEAT_SCHEDULE or _job == "sweep-deliveries":
        raise ImproperlyConfigured(
            f"BEAT_INTERVALS: {_job!r} is not one of "
            f"{', '.join(sorted(set(CELERY_BEAT_SCHEDULE) - {'sweep-deliveries'}))} "
            "(the sweep's interval is EMAIL_SWEEP_SECONDS)."
        )
    CELERY_BEAT_SCHEDULE[_job]["schedule"] = _seconds
# Beat runs as one replica, and two that overlap are still safe: only the holder of a lease in
# Redis sends periodic tasks (herald.beat). A dead holder is replaced within about a lease.
CELERY_BEAT_SCHEDULER = "herald.beat:LeaderScheduler"
BEAT_LEASE_SECONDS = env_float("BEAT_LEASE_SECONDS", 15.0)
if not BEAT_LEASE_SECONDS >= 1:
    raise ImproperlyConfigured("BEAT_LEASE_SECONDS must be at least 1.")

# --- Deliveries (email) --------------------------------------------------------------------------
# A running turn's hold on its slot and on the rows it claimed (notifications/services/leases.py):
# renewed by its heartbeat while it works, gone one lease after its worker died.
DELIVERY_LEASE_SECONDS = env_int("DELIVERY_LEASE_SECONDS", 20)
DELIVERY_HEARTBEAT_SECONDS = env_float(
    "DELIVERY_HEARTBEAT_SECONDS", max(DELIVERY_LEASE_SECONDS / 3, 0.5)
)
if not 0 < DELIVERY_HEARTBEAT_SECONDS * 2 <= DELIVERY_LEASE_SECONDS:
    raise ImproperlyConfigured(
        "DELIVERY_HEARTBEAT_SECONDS must be positive and at most half of DELIVERY_LEASE_SECONDS"
    )
# Fair turns between tenants (notifications/services/turns.py)
EMAIL_TENANT_CONCURRENCY = env_int("EMAIL_TENANT_CONCURRENCY", 2)  # turns one tenant may hold
# A turn waiting in the broker holds its slot this long: a message lost with the broker frees it.
EMAIL_TURN_TTL = env_int("EMAIL_TURN_TTL_SECONDS", 600)
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 8)
DELIVERY_RETRY_BASE_SECONDS = env_int("DELIVERY_RETRY_BASE_SECONDS", 10)  # doubles per attempt
DELIVERY_RETRY_MAX_SECONDS = env_int("DELIVERY_RETRY_MAX_SECONDS", 900)
# Outbound requests (webhooks, web push) reach public addresses only, and addresses inside these
# networks (e.g. "127.0.0.2/32" for a local receiver in development); http:// only to these.
WEBHOOK_ALLOWED_CIDRS = env_cidrs("WEBHOOK_ALLOWED_CIDRS")
# Webhook delivery (notifications/webhooks/delivery.py): one request's deadline (at most the
# outbound guard's 15 s), the attempts an event gets and the waits between them (the n-th wait
# follows the n-th failed attempt; the last one repeats; each varies by +-WEBHOOK_RETRY_JITTER).
# The default: the first retry after 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 10 h, so
# 9 attempts over about 38 hours.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0)
if not 0 < WEBHOOK_TIMEOUT_SECONDS <= 15:
    raise ImproperlyConfigured("WEBHOOK_TIMEOUT_SECONDS must be more than 0 and at most 15.")
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 9)
WEBHOOK_RETRY_SCHEDULE = env_seconds(
    "WEBHOOK_RETRY_SCHEDULE", (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)
)
WEBHOOK_RETRY_JITTER = env_float("WEBHOOK_RETRY_JITTER", 0.2)
if not WEBHOOK_MAX_ATTEMPTS >= 1 or not 0 <= WEBHOOK_RETRY_JITTER < 1:
    raise ImproperlyConfigured(
        "WEBHOOK_MAX_ATTEMPTS must be at least 1 and WEBHOOK_RETRY_JITTER in [0, 1)."
    )
# An endpoint failing without a success for this long is disabled, and its admins are told.
WEBHOOK_DISABLE_AFTER_DAYS = env_float("WEBHOOK_DISABLE_AFTER_DAYS", 5.0)
# Endpoints one turn delivers to at once (a thread and a database connection each), and the
# events it takes from each.
WEBHOOK_TURN_ENDPOINTS = env_int("WEBHOOK_TURN_ENDPOINTS", 8)
WEBHOOK_BATCH_SIZE = env_int("WEBHOOK_BATCH_SIZE", 10)
DELIVERY_BATCH_SIZE = env_int("DELIVERY_BATCH_SIZE", 50)  # emails per turn
# Links in emails (unsubscribe) point at the tenant's primary domain with this scheme and port.
PUBLIC_URL_SCHEME = env_str("PUBLIC_URL_SCHEME", "http" if DEBUG else "https")
PUBLIC_URL_PORT = env_str("PUBLIC_URL_PORT", "8000" if DEBUG else "")

# --- Tenant templates (notifications.templating) --------------------------------------------------
# Every tenant-authored template is Liquid, rendered within these limits in the worker and in the
# dashboard's preview. A delivery whose template exceeds one fails with the reason.
TEMPLATE_LOOP_LIMIT = env_int("TEMPLATE_LOOP_LIMIT", 10_000)  # loop turns per render, all loops
TEMPLATE_OUTPUT_LIMIT_BYTES = env_int("TEMPLATE_OUTPUT_LIMIT_BYTES", 256 * 1024)  # per template
TEMPLATE_CONTEXT_DEPTH_LIMIT = env_int("TEMPLATE_CONTEXT_DEPTH_LIMIT", 30)  # nested scopes
TEMPLATE_LOCALS_LIMIT_BYTES = env_int("TEMPLATE_LOCALS_LIMIT_BYTES", 128 * 1024)  # assign/capture
TEMPLATE_RENDER_TIMEOUT_SECONDS = env_float("TEMPLATE_RENDER_TIMEOUT_SECONDS", 1.0)  # per email
for _name in ("TEMPLATE_LOOP_LIMIT", "TEMPLATE_OUTPUT_LIMIT_BYTES", "TEMPLATE_CONTEXT_DEPTH_LIMIT",
              "TEMPLATE_LOCALS_LIMIT_BYTES", "TEMPLATE_RENDER_TIMEOUT_SECONDS"):  # fmt: skip
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive: a template limit cannot be off.")

# --- Email ---------------------------------------------------------------------------------------
_email = parse_email_url(env_str("EMAIL_URL", "console://" if DEBUG else "smtp://localhost:25"))
EMAIL_BACKEND = _email.backend
EMAIL_HOST = _email.host
EMAIL_PORT = _email.port
EMAIL_HOST_USER = _email.user
EMAIL_HOST_PASSWORD = _email.password
EMAIL_USE_TLS = _email.use_tls
EMAIL_USE_SSL = _email.use_ssl
EMAIL_TIMEOUT = _email.timeout
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", f"Herald <notifications@{PLATFORM_HOST}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Web push (notifications.channels.push) -------------------------------------------------------
# The VAPID key pair (RFC 8292) that signs every push request: a PEM P-256 private key (SEC 1 or
# PKCS#8; "\n" escapes are read as line breaks, for one-line environment values). Unset: one
# key derived from SECRET_KEY with HKDF (notifications.channels.push.vapid), the same in every
# replica; changing SECRET_KEY then changes it, and browsers must subscribe again.
VAPID_PRIVATE_KEY = (env_raw("VAPID_PRIVATE_KEY") or "").strip().replace("\\n", "\n")
if VAPID_PRIVATE_KEY and (_refusal := vapid_key_refusal(VAPID_PRIVATE_KEY)):
    raise ImproperlyConfigured(
        f"VAPID_PRIVATE_KEY: {_refusal} Generate one with `python manage.py vapid_keygen` "
        "or `openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`."
    )
# Who runs this server, for push services to contact: a mailto: or https: URL.
VAPID_SUBJECT = env_str(
    "VAPID_SUBJECT",
    "mailto:" + (parseaddr(DEFAULT_FROM_EMAIL)[1] or f"notifications@{PLATFORM_HOST}"),
)
if not vapid_subject_valid(VAPID_SUBJECT):
    raise ImproperlyConfigured(
        f"VAPID_SUBJECT={VAPID_SUBJECT!r} is not a mailto: address (mailto:ops@example.com) "
        "or an https: URL (https://example.com/contact)."
    )
# How long a push service keeps a message for a browser that is offline (the TTL header).
PUSH_TTL_SECONDS = env_int("PUSH_TTL_SECONDS", 24 * 3600)
if not 0 <= PUSH_TTL_SECONDS <= 28 * 86400:
    raise ImproperlyConfigured("PUSH_TTL_SECONDS must be 0 to 2419200 (28 days).")
# Each request to a push service, from the lookup to the answer (at most 15 s).
PUSH_TIMEOUT_SECONDS = env_float("PUSH_TIMEOUT_SECONDS", 10.0)
if not 0 < PUSH_TIMEOUT_SECONDS <= 15:
    raise ImproperlyConfigured("PUSH_TIMEOUT_SECONDS must be more than 0 and at most 15.")

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.AdminTokenAuthentication",
        "tenants.authentication.EndUserTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsServer"],
    "DEFAULT_THROTTLE_CLASSES": ["herald.ratelimits.PlanRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["herald.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "herald.negotiation.ContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "api_docs.schema.HeraldAutoSchema",
    "EXCEPTION_HANDLER": "herald.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

RATELIMIT_USE_CACHE = "default"

SPECTACULAR_SETTINGS = {
    "TITLE": "Herald API",
    "DESCRIPTION": "Multi-tenant notifications: in-app, WebSocket, email and digests.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Two "status" enums (deliveries', webhook deliveries'): name the second.
    "ENUM_NAME_OVERRIDES": {
        "WebhookDeliveryStatusEnum": "api_docs.docs.WEBHOOK_DELIVERY_STATUSES",
    },
}

END_USER_TOKEN_TTL_SECONDS = env_int("END_USER_TOKEN_TTL_SECONDS", 3600)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("ADMIN_TOKEN_TTL_SECONDS", 900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("ADMIN_REFRESH_TTL_SECONDS", 7 * 86400)),
    "SIGNING_KEY": SECRET_KEY,
    "ALGORITHM": "HS256",
    "USER_ID_CLAIM": "sub",
    "USER_ID_FIELD": "id",
}

# --- Security ------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# A send may name 10,000 recipients with emails and names: allow bodies up to 8 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
# Arrays and objects nested deeper than this are refused with 400 (herald.safejson): Python's
# decoder recurses per level. The API's own bodies need a handful; `data` gets the rest.
JSON_MAX_DEPTH = 64

STATIC_URL = "static/"
# WhiteNoise serves the dashboard's CSS and JavaScript straight from the apps' static folders in
# every process, so no `collectstatic` step or separate file server is needed. Set STATIC_ROOT
# to run `collectstatic` (the container image does at build time and serves them from there; or
# to put the files on a CDN).
STATIC_ROOT = env_raw("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Dashboard (tenant admins, session login on the tenant host) -----------------------------
LOGIN_URL = "/dashboard/login"
LOGIN_REDIRECT_URL = "/dashboard/"
# Session and CSRF cookies stay host-only (no SESSION_COOKIE_DOMAIN): a login on
# acme.<PLATFORM_HOST> is never sent to another tenant's host, and each tenant's sessions live in
# its own schema.
SESSION_COOKIE_AGE = env_int("DASHBOARD_SESSION_SECONDS", 14 * 86400)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", 3600)
SECURE_REFERRER_POLICY = "same-origin"
CSRF_FAILURE_VIEW = "herald.errors.csrf_failure"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Logs (herald.logs) ----------------------------------------------------------------------
# One JSON object per line on stdout ("plain" text for a terminal), in every process: Celery's
# worker and beat apply this too (herald.celery_logs), and so their --loglevel is unused.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = log_format()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"herald": {"()": "herald.logs.formatter", "kind": LOG_FORMAT}},
    "handlers": {
        # The stream as the process started: Celery may later point sys.stdout at a logger.
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "herald",
            "stream": "ext://sys.__stdout__",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django logs every 4xx as a warning; herald.request's line per request has them all.
        "django.request": {"level": "ERROR"},
        # uvicorn's lines go through the root handler; its access log is off, for the same
        # line per request (which leaves out the query string, where secrets may be).
        "uvicorn": {"handlers": [], "propagate": True},
        "uvicorn.access": {"handlers": [], "propagate": False},
    },
}

# --- Metrics -----------------------------------------------------------------------------------
# GET /metrics on the platform host; with a token, only for "Authorization: Bearer <token>".
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Opt-in: a gauge of this billing period's notifications for the N tenants with the most, labelled
# by slug (at most N series). 0: off, no tenant appears in any label.
METRICS_TOP_TENANTS = env_int("METRICS_TOP_TENANTS", 0)
if METRICS_TOP_TENANTS < 0:
    raise ImproperlyConfigured("METRICS_TOP_TENANTS must be 0 (off) or a number of tenants.")

# --- Errors --------------------------------------------------------------------------------------
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    from herald.observability import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
    )
