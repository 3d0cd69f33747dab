"""Settings from the environment, with embedded defaults that run on one machine.

Unset: SQLite under var/, a filesystem Celery broker (no server), a local Orthanc on :8042.
Set DATABASE_URL / CELERY_BROKER_URL / DICOMWEB_URL to run on PostgreSQL, Redis or RabbitMQ and any PACS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
# The embedded default key is for local runs only; production must set SECRET_KEY. Its "django-insecure-"
# prefix makes `manage.py check --deploy` report it (security.W009).
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-dev-only-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# HTTPS=1 behind TLS (directly or through a proxy that sets X-Forwarded-Proto): cookies only over HTTPS,
# plain HTTP redirected, HSTS for a year (HSTS_SECONDS to change; 0 while trying it out). Patient data
# must not travel in clear text; the local embedded defaults stay on plain HTTP.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", False)
SESSION_COOKIE_HTTPONLY = True
# Automatic logoff after this many minutes without a request (portal.middleware.IdleLogoffMiddleware): a
# workstation left signed in does not stay open to the next person.
SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "portal.accounts",
    "portal.studies",
    "detection",
]
OPTIONAL_APPS = ["annotations", "portal.claims"]
INSTALLED_APPS += [app for app in OPTIONAL_APPS if (BASE_DIR / app.replace(".", "/") / "apps.py").exists()]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # outside whitenoise: the viewer's worker scripts get the policy too
    "portal.middleware.CrossOriginIsolationMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "portal.middleware.IdleLogoffMiddleware",
]

# Content-Security-Policy: everything from this origin only. Cornerstone's codecs compile WebAssembly
# ('wasm-unsafe-eval'; no JavaScript eval); styles may be inline (the login page, Swagger UI); no frames.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

ROOT_URLCONF = "portal.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.accounts.navigation.navigation",
            ]
        },
    }
]
WSGI_APPLICATION = "portal.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web and worker processes share the file: wait for locks instead of failing. WAL lets readers go on
    # while one writes, and with synchronous=NORMAL a commit does not wait for fsync (an application crash
    # loses nothing; a power cut may lose the last commits, which QIDO re-sync and staging recover).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The default cache keeps the access log's one-entry-per-hour window, per process unless CACHE_URL names a
# shared one (several web processes: CACHE_URL=redis://host:6379/1); it also carries the frame proxy's access
# epoch, which tells every process that access was taken away (portal.studies.proxy_access). "local" is always
# this process's memory: the proxy's short-lived memory of callers and permissions, which costs no round trip.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: only Redis is supported (redis://, rediss://, unix://)")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL, "KEY_PREFIX": "portal"}
        if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "portal-default"}
    ),
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "portal-local"},
}

AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = 0.25  # hours
# An emailed password-reset link works once and only this long (Django's default is three days).
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_TIMEOUT", str(2 * 3600)))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [("app", FRONTEND_DIST)] if FRONTEND_DIST.exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads: large DICOM series stream to disk instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = int(os.environ.get("UPLOAD_MAX_FILES", "5000"))
UPLOAD_MAX_FILE_BYTES = int(os.environ.get("UPLOAD_MAX_FILE_BYTES", str(512 * 1024 * 1024)))
UPLOAD_MAX_ZIP_UNCOMPRESSED_BYTES = int(os.environ.get("UPLOAD_MAX_ZIP_UNCOMPRESSED_BYTES", str(4 * 1024**3)))
UPLOAD_MAX_ZIP_RATIO = int(os.environ.get("UPLOAD_MAX_ZIP_RATIO", "200"))
UPLOAD_MAX_DECODED_PIXEL_BYTES = int(os.environ.get("UPLOAD_MAX_DECODED_PIXEL_BYTES", str(2 * 1024**3)))
STAGING_DIR = VAR_DIR / "staging"
RESULTS_DIR = VAR_DIR / "results"

DICOMWEB_URL = os.environ.get("DICOMWEB_URL", "http://127.0.0.1:8042/dicom-web")
DICOMWEB_TIMEOUT = float(os.environ.get("DICOMWEB_TIMEOUT", "60"))
# Instances per STOW-RS request during upload: smaller starts the PACS sooner, larger means fewer requests.
DICOMWEB_STOW_BATCH = int(os.environ.get("DICOMWEB_STOW_BATCH", "16"))
# Concurrent STOW-RS requests per upload: the PACS stores one request while the next is being sent.
DICOMWEB_STOW_PARALLEL = int(os.environ.get("DICOMWEB_STOW_PARALLEL", "2"))
# The viewer fetches hundreds of frames per study: the signed-in caller (per session or token) and a granted
# per-study permission are remembered this many seconds per process (0: check every request). Denials are
# never cached, so a new share works at once; taking access away (withdrawal, unsharing, sign-out, a role or
# token removed) reaches the frame proxy at once through the access epoch (portal.studies.proxy_access).
DICOMWEB_PROXY_ACCESS_TTL = int(os.environ.get("DICOMWEB_PROXY_ACCESS_TTL", "30"))

# Tamper alerts by email (detection/alerts.py): SMTP when EMAIL_HOST is set, else one file per message
# under var/mail (the demo). Links in messages start with PORTAL_URL; TAMPER_ALERT_EMAILS (comma-separated)
# are told of every tamper verdict, besides the study's uploader.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = 30
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "tamper-portal@localhost")
TAMPER_ALERT_EMAILS = [a.strip() for a in os.environ.get("TAMPER_ALERT_EMAILS", "").split(",") if a.strip()]
PORTAL_URL = os.environ.get("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")

REST_FRAMEWORK = {
    # Token first: DRF takes WWW-Authenticate from the first class, so a call without credentials is a 401
    # ("log in"), not a 403 ("not allowed"); a browser session is still accepted by the second.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # PacsUnavailable -> 503 with Retry-After, PacsRejected -> 502, from any API view.
    "EXCEPTION_HANDLER": "portal.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Medical image tamper detection portal API",
    "DESCRIPTION": "Upload studies, browse them, read detector scores, label, check claims.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar's static files: no third-party script next to the session, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api_schema.document_common_errors",
    ],
    # Several models have a `status` or `kind`; name each choice set after its model instead of Status<hash>Enum.
    "ENUM_NAME_OVERRIDES": {
        "QueueItemStatusEnum": "annotations.models.QueueItem.Status",
        "RetrainRunStatusEnum": "annotations.models.RetrainRun.Status",
        "ModelVersionStatusEnum": "detection.models.ModelVersion.Status",
        "ScoringJobStatusEnum": "detection.models.ScoringJob.Status",
        "UploadBatchStatusEnum": "portal.studies.models.UploadBatch.Status",
        "ClaimImageStatusEnum": "portal.claims.models.ClaimImage.Status",
        "LabelClassEnum": "annotations.models.LABEL_CHOICES",
        "StudyAccessKindEnum": "portal.studies.models.StudyAccess.Kind",
        "ClaimImageKindEnum": "portal.claims.models.ClaimImage.Kind",
        "EncryptedShareKindEnum": "portal.claims.models.EncryptedShare.Kind",
    },
}

# Celery: the default filesystem transport needs no server; set CELERY_BROKER_URL for Redis/RabbitMQ.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_queue_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged job after this many seconds (a killed worker's job comes back).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
# Long work (retraining, re-scoring many series after a new model) goes to its own queue and workers, so
# an upload's scoring never waits behind it: `celery -A portal worker -Q $CELERY_BULK_QUEUE`.
CELERY_BULK_QUEUE = os.environ.get("CELERY_BULK_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}.bulk")
CELERY_TASK_ROUTES = {"annotations.tasks.retrain_task": {"queue": CELERY_BULK_QUEUE}}

DETECTOR_ARTIFACT = os.environ.get("DETECTOR_ARTIFACT") or None
DETECTOR_DEVICE = os.environ.get("DETECTOR_DEVICE") or None
# Claim images (one slice each) are scored by this artefact when it is calibrated for single images;
# "" / unset = the shipped single-image model, "series" = the active series model (as before it existed).
DETECTOR_SINGLE_IMAGE_ARTIFACT = os.environ.get("DETECTOR_SINGLE_IMAGE_ARTIFACT", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

VAR_DIR.mkdir(parents=True, exist_ok=True)
