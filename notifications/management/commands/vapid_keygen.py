"""``manage.py vapid_keygen``: print a new VAPID private key for ``VAPID_PRIVATE_KEY``."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand

from notifications.channels.push.vapid import public_key_base64url


class Command(BaseCommand):
    help = (
        "Print a new P-256 private key (PEM, PKCS#8) for VAPID_PRIVATE_KEY, and its public key "
        "as browsers take it. Keep the private key secret; changing it makes every browser "
        "subscribe again."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--one-line",
            action="store_true",
            help=r"Write the PEM's line breaks as \n, for an environment variable on one line.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        if options["one_line"]:
            pem = pem.strip().replace("\n", "\\n") + "\n"
        self.stdout.write(pem, ending="")
        self.stderr.write(f"Public key: {public_key_base64url(key.public_key())}")
