"""Table definitions and migrations (L1). Only the store and the dialects import this."""

from quebec.schema.migrate import SCHEMA_VERSION, create_tables, current_version, upgrade
from quebec.schema.tables import Tables, build_tables

__all__ = ["SCHEMA_VERSION", "Tables", "build_tables", "create_tables", "current_version", "upgrade"]
