"""Models in each tenant's schema. One tenant's rows never share a table with another's."""

from __future__ import annotations

from django.db import models


class EndUser(models.Model):
    """A customer's own user, who receives notifications. Identified by the customer's id."""

    external_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=200, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.external_id
