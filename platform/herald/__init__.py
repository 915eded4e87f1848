"""Herald's project package: settings, URLs, ASGI/WSGI entry points and the Celery app.

It lives in ``platform/herald`` and ``platform/`` has no ``__init__.py`` on purpose: a package
named ``platform`` would shadow the standard library module that Django, Celery, sentry-sdk and
redis-py import.
"""

from herald.celery import app as celery_app

__all__ = ("celery_app",)
