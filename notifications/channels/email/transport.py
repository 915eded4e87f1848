"""SMTP, the email channel's transport: one connection per batch, and what its errors mean.

Every failure to hand a message over raises ``TransportError``: a 5xx (for every recipient)
is permanent; a 4xx or a broken connection is worth another attempt. The connection is reset
after any failure (it may have broken halfway through a message), so the next message opens a
fresh one.
"""

from __future__ import annotations

import contextlib
import smtplib
from typing import Any

from django.core.mail import EmailMessage, get_connection

from notifications.channels.base import TransportError


def smtp_error(exc: smtplib.SMTPException | OSError) -> TransportError:
    """A 5xx is permanent; a 4xx or a broken connection is worth another attempt."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        detail = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return TransportError(f"Recipient refused: {detail}", permanent=permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        return TransportError(error, permanent=exc.smtp_code >= 500)
    return TransportError(f"{type(exc).__name__}: {exc}")


class SmtpTransport:
    """One SMTP connection (Django's email backend) for a batch, reopened after a failure."""

    def __init__(self) -> None:
        self._connection: Any = None

    def send(self, message: EmailMessage) -> None:
        """Raises TransportError; any other error (one Django raises composing the message)
        propagates, the connection reset either way."""
        try:
            if self._connection is None:
                self._connection = get_connection(fail_silently=False)
                self._connection.open()
            self._connection.send_messages([message])
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise smtp_error(exc) from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
