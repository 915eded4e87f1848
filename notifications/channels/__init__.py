"""Delivery channels, one folder each (``in_app/``, ``email/``, ``push/``), behind the interface of
``base``; ``registry`` maps a channel's name to its plug-in, and ``names`` lists them. How to add
one: ``README.md`` here."""
