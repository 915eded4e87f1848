"""Settings come only from the environment, and bad or missing values stop the process."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from herald.env import (
    env_bool,
    env_cidrs,
    env_durations,
    env_int,
    env_ints,
    env_str,
    parse_email_url,
)
from tests.support.processes import ROOT, process_env


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    base = process_env(**env)
    for name, value in env.items():
        if value is None:
            base.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", "import herald.settings as s; print(s.DEBUG, s.EMAIL_BACKEND)"],
        cwd=ROOT, env={k: v for k, v in base.items() if v is not None},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_production_refuses_to_start_without_secret_key():
    result = load_settings(SECRET_KEY=None, DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = load_settings(SECRET_KEY="short", DEBUG="false")
    assert result.returncode != 0
    assert "too weak" in result.stderr


def test_development_mode_starts_without_secret_key():
    result = load_settings(SECRET_KEY=None, DEBUG="true", EMAIL_URL=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.core.mail.backends.console.EmailBackend"]


def test_debug_defaults_off():
    result = load_settings(DEBUG=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


def test_bad_boolean_names_the_variable():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_log_format_and_top_tenants_refuse_what_they_do_not_know():
    result = load_settings(LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT='xml' is not one of json, plain" in result.stderr
    result = load_settings(METRICS_TOP_TENANTS="-1")
    assert result.returncode != 0
    assert "METRICS_TOP_TENANTS must be 0" in result.stderr


def test_secrets_can_come_from_files(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("HERALD_TEST_VALUE_FILE", str(secret))
    assert env_str("HERALD_TEST_VALUE") == "from-a-file"
    monkeypatch.setenv("HERALD_TEST_VALUE_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_str("HERALD_TEST_VALUE")


def test_typed_helpers(monkeypatch):
    monkeypatch.setenv("HERALD_N", "12")
    monkeypatch.setenv("HERALD_FLAG", "On")
    assert env_int("HERALD_N", 1) == 12
    assert env_bool("HERALD_FLAG") is True
    monkeypatch.setenv("HERALD_N", "twelve")
    with pytest.raises(ImproperlyConfigured, match="HERALD_N='twelve' is not an integer"):
        env_int("HERALD_N", 1)
    with pytest.raises(ImproperlyConfigured, match="HERALD_MISSING is required"):
        env_str("HERALD_MISSING")


def test_integer_tuples(monkeypatch):
    assert env_ints("HERALD_NS", (1, 2, 3)) == (1, 2, 3)
    monkeypatch.setenv("HERALD_NS", "5000, 20,0")
    assert env_ints("HERALD_NS", (1, 2, 3)) == (5000, 20, 0)
    for bad in ("1,2", "1,2,3,4", "1,two,3", "1,-2,3"):
        monkeypatch.setenv("HERALD_NS", bad)
        with pytest.raises(ImproperlyConfigured, match=r"HERALD_NS=.* 3 comma-separated"):
            env_ints("HERALD_NS", (1, 2, 3))


def test_durations(monkeypatch):
    assert env_durations("HERALD_DURATIONS") == {}
    monkeypatch.setenv("HERALD_DURATIONS", "rollup-usage=120, release-due-sends = 0.5,")
    assert env_durations("HERALD_DURATIONS") == {"rollup-usage": 120, "release-due-sends": 0.5}
    for bad in ("rollup-usage", "rollup-usage=0", "=5", "a=b", "a=nan", "a=inf", "a=-1"):
        monkeypatch.setenv("HERALD_DURATIONS", bad)
        with pytest.raises(ImproperlyConfigured, match=r"HERALD_DURATIONS=.* key=seconds"):
            env_durations("HERALD_DURATIONS")


def test_cidrs(monkeypatch):
    assert env_cidrs("HERALD_CIDRS") == ()
    monkeypatch.setenv("HERALD_CIDRS", "127.0.0.2/32, 10.0.0.0/8,fd00::/8,192.0.2.7,")
    assert [str(network) for network in env_cidrs("HERALD_CIDRS")] == [
        "127.0.0.2/32",
        "10.0.0.0/8",
        "fd00::/8",
        "192.0.2.7/32",
    ]
    for bad in ("10.0.0.1/8", "10.0.0.0/33", "example.com", "10.0.0.0/8;fd00::/8"):
        monkeypatch.setenv("HERALD_CIDRS", bad)
        with pytest.raises(ImproperlyConfigured, match=r"HERALD_CIDRS: .* is not a CIDR"):
            env_cidrs("HERALD_CIDRS")


def test_a_bad_webhook_cidr_stops_startup():
    result = load_settings(WEBHOOK_ALLOWED_CIDRS="127.0.0.2/32,localhost")
    assert result.returncode != 0
    assert "WEBHOOK_ALLOWED_CIDRS: 'localhost' is not a CIDR" in result.stderr


def test_beat_settings_are_checked():
    code = "import herald.settings as s; print(s.CELERY_BEAT_SCHEDULE['rollup-usage']['schedule'])"
    run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 60, "check": False}
    default = subprocess.run([sys.executable, "-c", code], env=process_env(), **run)
    assert default.stdout.strip() == "60.0", default.stderr
    shorter = process_env(BEAT_INTERVALS="rollup-usage=2")
    assert subprocess.run([sys.executable, "-c", code], env=shorter, **run).stdout.strip() == "2.0"
    for job in ("rollup", "sweep-deliveries"):  # the sweep has EMAIL_SWEEP_SECONDS
        refused = subprocess.run(
            [sys.executable, "-c", code], env=process_env(BEAT_INTERVALS=f"{job}=2"), **run
        )
        assert refused.returncode != 0
        assert f"BEAT_INTERVALS: {job!r} is not one of" in refused.stderr
    short_lease = process_env(BEAT_LEASE_SECONDS="0.5")
    refused = subprocess.run([sys.executable, "-c", code], env=short_lease, **run)
    assert "BEAT_LEASE_SECONDS must be at least 1" in refused.stderr


def test_web_process_sets_the_garbage_collector_thresholds():
    code = "import gc, herald.asgi; print(gc.get_threshold())"
    run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 60, "check": False}
    default = subprocess.run([sys.executable, "-c", code], env=process_env(), **run)
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == "(700, 10, 10)"
    custom = subprocess.run(
        [sys.executable, "-c", code], env=process_env(WEB_GC_THRESHOLDS="700,10,1000"), **run
    )
    assert custom.stdout.strip() == "(700, 10, 1000)", custom.stderr


def test_web_process_raises_its_open_files_soft_limit_to_the_hard_one():
    """A web process holds a socket per WebSocket: a container's soft limit of 1,024 would
    refuse connections long before 10,000."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(1024, hard)
    code = "import resource, herald.asgi; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=process_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard)),
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.strip()) == hard


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("smtp", "mail.example.com", 25, "", "", False, False)),
        (
            "smtp://u%40x:p%2Fw@127.0.0.1:2525?tls=1",
            ("smtp", "127.0.0.1", 2525, "u@x", "p/w", True, False),
        ),
        ("submission://relay", ("smtp", "relay", 587, "", "", True, False)),
        ("smtps://relay", ("smtp", "relay", 465, "", "", False, True)),
        ("console://", ("console", "localhost", 0, "", "", False, False)),
    ],
)
def test_email_url(url, expected):
    config = parse_email_url(url)
    backend, host, port, user, password, tls, ssl = expected
    assert f".{backend}." in config.backend
    assert (config.host, config.port, config.user, config.password) == (host, port, user, password)
    assert (config.use_tls, config.use_ssl) == (tls, ssl)


def test_email_url_with_unknown_scheme():
    with pytest.raises(ImproperlyConfigured, match="scheme 'http'"):
        parse_email_url("http://example.com")


def _vapid_settings(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import herald.settings as s; "
        "from notifications.channels.push.vapid import vapid_public_key; "
        "print(s.VAPID_SUBJECT, vapid_public_key())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=process_env(**env),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_vapid_settings_are_checked_and_a_generated_key_is_used(tmp_path):
    default = _vapid_settings()
    assert default.returncode == 0, default.stderr
    subject, derived = default.stdout.split()
    assert subject == "mailto:notifications@" + process_env()["PLATFORM_HOST"]
    # Another process with the same SECRET_KEY derives the same key.
    assert _vapid_settings().stdout.split()[1] == derived

    generated = subprocess.run(
        [sys.executable, "manage.py", "vapid_keygen", "--one-line"], cwd=ROOT,
        env=process_env(DJANGO_SETTINGS_MODULE="herald.settings"),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    one_line = generated.stdout.strip()
    public = generated.stderr.strip().removeprefix("Public key: ")
    assert "\n" not in one_line
    configured = _vapid_settings(VAPID_PRIVATE_KEY=one_line, VAPID_SUBJECT="https://ops.example/c")
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.split() == ["https://ops.example/c", public]
    (tmp_path / "vapid.pem").write_text(one_line.replace("\\n", "\n"))
    from_file = _vapid_settings(VAPID_PRIVATE_KEY_FILE=str(tmp_path / "vapid.pem"))
    assert from_file.stdout.split()[1] == public


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VAPID_PRIVATE_KEY": "not a key"}, "VAPID_PRIVATE_KEY: not a PEM private key"),
        ({"VAPID_SUBJECT": "ops@example.com"}, "VAPID_SUBJECT='ops@example.com' is not"),
        ({"VAPID_SUBJECT": "http://example.com"}, "is not a mailto: address"),
        ({"VAPID_SUBJECT": "mailto:nobody"}, "is not a mailto: address"),
    ],
)
def test_bad_vapid_settings_stop_startup(env, message):
    result = _vapid_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_vapid_key_on_another_curve_stops_startup():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    result = _vapid_settings(VAPID_PRIVATE_KEY=pem.decode())
    assert result.returncode != 0
    assert "not a P-256" in result.stderr
