"""Imports every table so `Base.metadata` is complete (Alembic's autogenerate compares against it)."""

from service.db import Base
from service.users.models import User

__all__ = ["Base", "User"]
