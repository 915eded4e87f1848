"""Typed environment helpers that fail loudly.

Every helper reads ``NAME`` or, when ``NAME_FILE`` is set, the contents of that file (for secrets
mounted by an orchestrator). A value that is present but malformed raises ``ImproperlyConfigured``
naming the variable, instead of silently falling back to a default.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_raw(name: str) -> str | None:
    """Return the variable's value, reading ``NAME_FILE`` when set; None when neither is set."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return os.environ.get(name)


def env_str(name: str, default: str | None = None) -> str:
    value = env_raw(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, default: bool = False) -> bool:
    value = env_raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, on/off).")


def env_int(name: str, default: int) -> int:
    value = env_raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from exc


def env_float(name: str, default: float) -> float:
    value = env_raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from exc


def env_ints(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated non-negative integers, exactly as many as ``default`` has."""
    value = env_raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        numbers = tuple(int(item) for item in value.split(","))
    except ValueError:
        numbers = ()
    if len(numbers) != len(default) or min(numbers) < 0:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not {len(default)} comma-separated non-negative integers."
        )
    return numbers


def env_durations(name: str) -> dict[str, float]:
    """Comma-separated ``key=seconds`` pairs (``rollup-usage=120,rebuild-due-work=600``), each
    a positive number of seconds; empty when unset."""
    value = env_raw(name) or ""
    durations: dict[str, float] = {}
    for item in filter(str.strip, value.split(",")):
        key, _, seconds = (part.strip() for part in item.partition("="))
        try:
            duration = float(seconds)
        except ValueError:
            duration = math.nan
        if not key or not 0 < duration < math.inf:
            raise ImproperlyConfigured(
                f"{name}={value!r} is not comma-separated key=seconds pairs (positive numbers)."
            )
        durations[key] = duration
    return durations


def env_seconds(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Comma-separated positive numbers of seconds (``5,300,1800``), at least one."""
    value = env_raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        numbers = tuple(float(item) for item in value.split(","))
    except ValueError:
        numbers = ()
    if not numbers or not all(0 < number < math.inf for number in numbers):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not comma-separated positive numbers of seconds."
        )
    return numbers


def env_cidrs(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs (``10.0.0.0/8,fd00::/8``; a bare address is one host); empty when
    unset. A network with host bits set (``10.0.0.1/8``) is refused as a likely typo."""
    value = env_raw(name) or ""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a CIDR ({exc}).") from exc
    return tuple(networks)


@dataclass(frozen=True)
class EmailConfig:
    backend: str
    host: str = "localhost"
    port: int = 25
    user: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False
    timeout: int = 10


_EMAIL_SCHEMES = {
    "smtp": ("django.core.mail.backends.smtp.EmailBackend", 25),
    "submission": ("django.core.mail.backends.smtp.EmailBackend", 587),
    "smtps": ("django.core.mail.backends.smtp.EmailBackend", 465),
    "console": ("django.core.mail.backends.console.EmailBackend", 0),
    "locmem": ("django.core.mail.backends.locmem.EmailBackend", 0),
    "dummy": ("django.core.mail.backends.dummy.EmailBackend", 0),
}


def parse_email_url(url: str) -> EmailConfig:
    """Parse ``EMAIL_URL``: ``smtp://user:pass@host:port?tls=1``, ``smtps://...``, ``console://``.

    ``submission://`` is SMTP on 587 with STARTTLS; ``smtps://`` is implicit TLS on 465.
    """
    parts = urlsplit(url)
    if parts.scheme not in _EMAIL_SCHEMES:
        known = ", ".join(sorted(_EMAIL_SCHEMES))
        raise ImproperlyConfigured(f"EMAIL_URL scheme {parts.scheme!r} is not one of: {known}.")
    backend, default_port = _EMAIL_SCHEMES[parts.scheme]
    query = {key: values[-1].lower() for key, values in parse_qs(parts.query).items()}
    try:
        port = parts.port or default_port
        timeout = int(query.get("timeout", "10"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"EMAIL_URL has a bad port or timeout: {exc}") from exc
    return EmailConfig(
        backend=backend,
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=parts.scheme == "submission" or query.get("tls") in _TRUE,
        use_ssl=parts.scheme == "smtps" or query.get("ssl") in _TRUE,
        timeout=timeout,
    )
