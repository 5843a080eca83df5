"""Every table of the hub, in one low package.

Domains import their tables from here, so no domain has to import another to
query a table they share (consent reads shops, erasure deletes consents), and
``metadata`` is complete for Alembic and the schema-drift test.
"""

from __future__ import annotations

from cornerstore.db import Base
from cornerstore.models import (
    analytics,
    audit,
    consent,
    keys,
    principals,
    proposals,
    ratelimits,
    records,
    shops,
)

metadata = Base.metadata

__all__ = [
    "analytics",
    "audit",
    "consent",
    "keys",
    "metadata",
    "principals",
    "proposals",
    "ratelimits",
    "records",
    "shops",
]
