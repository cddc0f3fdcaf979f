"""The catalog and admin wire format: TOML tables, admin JSON bodies and answers, and the shapes database
rows are read back through, all by one configured cattrs converter."""

from apipod.dialects.catalog_wire.admin_input import CreateKeyBody, UsageQuery, create_key_body, usage_query
from apipod.dialects.catalog_wire.catalog import (
    catalog_from_document,
    model_from_table,
    plan_from_table,
    upstream_from_table,
)
from apipod.dialects.catalog_wire.converter import converter, read
from apipod.dialects.catalog_wire.errors import WireError
from apipod.dialects.catalog_wire.rows import from_row
from apipod.dialects.catalog_wire.tables import DEFAULT_BASE_URLS
from apipod.dialects.catalog_wire.views import (
    issued_key_view,
    key_view,
    model_view,
    plan_view,
    upstream_view,
    usage_view,
)

__all__ = [
    "DEFAULT_BASE_URLS",
    "CreateKeyBody",
    "UsageQuery",
    "WireError",
    "catalog_from_document",
    "converter",
    "create_key_body",
    "from_row",
    "issued_key_view",
    "key_view",
    "model_from_table",
    "model_view",
    "plan_from_table",
    "plan_view",
    "read",
    "upstream_from_table",
    "upstream_view",
    "usage_query",
    "usage_view",
]
