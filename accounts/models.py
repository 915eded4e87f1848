"""People who log in: tenant admins (in each tenant's schema) and platform staff (public schema).

End users who receive notifications are not accounts; they are ``notifications.EndUser``.
Because this app is installed in both schemas, an admin of tenant A simply does not exist in
tenant B's schema.

No Django permissions: a tenant's admins may do everything in their dashboard, and the platform's
Django admin is for superusers. Django's ``PermissionsMixin`` would give every tenant schema the
group and permission tables, their join tables and the content types they point at: 28 of a
schema's relations (a fifth), built at every sign-up and visited by every migration roll-out,
for a feature nothing used. ``User`` keeps the mixin's ``is_superuser`` column and answers the
permission checks Django's admin and auth views make (``has_perm`` and friends) from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the platform's Django admin.")
    is_superuser = models.BooleanField(
        "superuser status",
        default=False,
        help_text="Has every permission; the platform's Django admin shows nothing to anyone else.",
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    # The permission checks of Django's admin and auth views (what PermissionsMixin answered
    # from its tables): an active superuser may do everything, anyone else nothing.
    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return self.is_active and self.is_superuser

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return self.is_active and self.is_superuser

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_superuser
