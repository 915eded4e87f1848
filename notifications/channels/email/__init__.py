"""The email channel: fan-out into the outbox (``channel``), templates (``rendering``),
composing a message (``sending``), SMTP and its errors (``transport``), digests (``digest``)
and unsubscribe links (``unsubscribe``)."""
