"""Writes on a tenant's notification data. Call inside the tenant's schema."""
