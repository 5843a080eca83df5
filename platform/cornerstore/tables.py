"""Imports every domain's tables, so that ``Base.metadata`` is complete.

Alembic and the schema-drift test need all tables; the running app gets them
through its routers anyway.
"""

from __future__ import annotations

import audit.models  # noqa: F401
import consent.models  # noqa: F401
import cornerstore.keys.models
import cornerstore.principals.models
import cornerstore.records.models
import cornerstore.shops.models  # noqa: F401
from cornerstore.db import Base

metadata = Base.metadata
