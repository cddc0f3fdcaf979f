"""The admin API's OpenAPI 3.1 document, built from the same ``Operation`` declarations the routes are made
from: paths, parameters (from the query classes), request bodies (from the body classes, through
``catalog_wire.schema``) and answers (``catalog_wire.answer_schemas``)."""

from __future__ import annotations

import re
from typing import Any

import attrs

from apipod.dialects.catalog_wire.answer_schemas import COMPONENTS, ref
from apipod.dialects.catalog_wire.schema import SchemaBuilder
from apipod.dialects.catalog_wire.tables import PROVIDER_TABLES, ProviderTable
from apipod.domain.quota import Window
from apipod.entrypoints.http.admin_api import Operation

_PATH_PARAM = re.compile(r"{(\w+)}")
_ERRORS = {
    400: "Invalid input: `error.field` is the path of the offending value; nothing was stored.",
    403: "No admin secret, a wrong one, or no valid dashboard session (with its CSRF header when writing).",
    404: "No such item.",
    409: "The change conflicts with stored data (an item still referenced).",
    413: "The body is over the size limit.",
    429: "Too many failed admin authentications from this address; `Retry-After` says when to try again.",
}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never JSON null."""
    schema = dict(schema)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    return schema


def _parameters(operation: Operation, builder: SchemaBuilder) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAM.findall(operation.path)
    ]
    if operation.query is not None:
        described = builder.object_schema(operation.query)
        for field in attrs.fields(operation.query):
            schema = _without_null(described["properties"][field.name])
            description = schema.pop("description", None)
            param = {"name": field.name, "in": "query", "required": False, "schema": schema}
            if description:
                param["description"] = description
            params.append(param)
    return params


def _table_schema(cls: type, builder: SchemaBuilder, omit: tuple[str, ...]) -> dict[str, Any]:
    """A body class inline, without the fields the path gives."""
    schema = builder.object_schema(cls)
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in omit}
    required = [k for k in schema.get("required", ()) if k not in omit]
    schema.pop("required", None)
    return schema | ({"required": required} if required else {})


def _body_schema(cls: type, builder: SchemaBuilder, omit: tuple[str, ...]) -> dict[str, Any]:
    variants = BODY_VARIANTS.get(cls)
    if variants:
        return {"oneOf": [_variant(kind, v, builder, omit) for kind, v in variants]}
    return _table_schema(cls, builder, omit) if omit else builder.ref(cls)


def _variant(kinds: list[str], cls: type, builder: SchemaBuilder, omit: tuple[str, ...]) -> dict[str, Any]:
    schema = _table_schema(cls, builder, omit)
    schema["properties"]["type"] = {"type": "string", "enum": kinds}
    return schema


def _provider_variants() -> list[tuple[list[str], type]]:
    by_class: dict[type, list[str]] = {}
    for kind, cls in PROVIDER_TABLES.items():
        by_class.setdefault(cls, []).append(kind.value)
    return [(kinds, cls) for cls, kinds in by_class.items()]


# A body class read by ``type`` into one of several tables: documented as one of them.
BODY_VARIANTS: dict[type, list[tuple[list[str], type]]] = {ProviderTable: _provider_variants()}


def _body(operation: Operation, builder: SchemaBuilder) -> dict[str, Any] | None:
    if operation.body is not None:
        schema = _body_schema(operation.body, builder, operation.path_fields)
    elif operation.body_schema is not None:
        schema = dict(operation.body_schema)
    else:
        return None
    return {"required": not operation.body_optional, "content": {"application/json": {"schema": schema}}}


def _answers(operation: Operation) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, schema in operation.answers.items():
        if status == 204:
            answers[str(status)] = {"description": "Done."}
        elif schema is None:
            content = {operation.content_type.split(";")[0]: {"schema": {"type": "string"}}}
            answers[str(status)] = {"description": "The export.", "content": content}
        else:
            answers[str(status)] = {"description": "OK.", "content": {"application/json": {"schema": ref(schema)}}}
    errors = set()
    if not operation.public:
        errors |= {403, 429}
    if operation.query is not None or operation.body is not None or operation.body_schema is not None:
        errors.add(400)
    if operation.body is not None or operation.body_schema is not None:
        errors.add(413)
    if _PATH_PARAM.search(operation.path):
        errors.add(404)
    for status in sorted(errors | {s for s in operation.answers if s >= 400}):
        answers[str(status)] = {
            "description": _ERRORS.get(status, "An error."),
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return answers


# Types the converter reads with a hook of its own, as that hook takes them.
KNOWN_TYPES: dict[Any, dict[str, Any]] = {
    Window: {
        "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}, {"type": "object"}],
        "description": "A budget window: `minute`, `hour`, `day`, `week`, `month`, `5h`, a number of hours, "
        'or `{"hours": N}`.',
    },
}


def openapi_document(operations: list[Operation], *, version: str) -> dict[str, Any]:
    builder = SchemaBuilder(KNOWN_TYPES)
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        entry: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "tags": [operation.tag],
            "parameters": _parameters(operation, builder),
            "responses": _answers(operation),
        }
        if operation.description:
            entry["description"] = operation.description
        body = _body(operation, builder)
        if body is not None:
            entry["requestBody"] = body
        if operation.public:
            entry["security"] = []
        paths.setdefault(operation.path, {})[operation.method.lower()] = entry
    clashes = set(COMPONENTS) & set(builder.components)
    if clashes:
        raise ValueError(f"answer and body schemas share the names {sorted(clashes)}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "apipod admin API",
            "version": version,
            "description": "Keys, the catalog, usage and live state of an apipod gateway. Authenticate with the "
            "`x-admin-secret` header, or the dashboard's session cookie plus `x-csrf-token` on writes.",
        },
        "paths": paths,
        "components": {
            "schemas": {**COMPONENTS, **builder.components},
            "securitySchemes": {
                "adminSecret": {"type": "apiKey", "in": "header", "name": "x-admin-secret"},
                "session": {"type": "apiKey", "in": "cookie", "name": "apipod_admin"},
            },
        },
        "security": [{"adminSecret": []}, {"session": []}],
    }
