"""The one cattrs converter for catalog and admin data: TOML tables, admin JSON bodies and answers, and
database rows on their way back to domain objects.

Scalars are read strictly (``values``), lists must be lists, unknown keys are refused, and every failure
carries the path of the offending value (``errors.wire_error``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, get_args, get_origin

import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from apipod.dialects.catalog_wire import values
from apipod.dialects.catalog_wire.errors import WireError, wire_error
from apipod.dialects.catalog_wire.tables import (
    PROVIDER_TABLES,
    AntigravityProviderTable,
    CatalogDocument,
    CopilotProviderTable,
    KeyedProviderTable,
    MockProviderTable,
    ModelTable,
    OpenAIProviderTable,
    ProviderTable,
)
from apipod.domain.catalog import (
    Account,
    Alias,
    Plan,
    Route,
    Timeouts,
    Upstream,
    UpstreamKind,
    UpstreamModel,
    parse_kind,
)
from apipod.domain.keys import ApiKey
from apipod.domain.quota import MAX_WINDOW_HOURS, Budget, Window, parse_window
from apipod.domain.usage import Attempt, UsageRecord, UsageStatus

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]


def _is_sequence(type_: Any) -> bool:
    return get_origin(type_) in (tuple, list) and (get_origin(type_) is list or get_args(type_)[-1:] == (...,))


def _sequence_factory(type_: Any, converter: cattrs.Converter) -> Hook:
    """Only a list is a list: cattrs would iterate a string or a table's keys."""
    inner = (
        homogenous_tuple_structure_factory(type_, converter)
        if get_origin(type_) is tuple
        else list_structure_factory(type_, converter)
    )

    def structure(value: Any, type_: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"must be a list, not {values.kind_of(value)}")
        return inner(value, type_)

    return structure


def _mapping(key: Hook, value: Hook) -> Hook:
    def structure(data: Any, _: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise TypeError(f"must be a table, not {values.kind_of(data)}")
        result: dict[str, Any] = {}
        errors: list[Exception] = []
        for k, v in data.items():
            try:
                result[key(k, str)] = value(v, Any)
            except Exception as exc:  # noqa: BLE001 - collected and re-raised as a group, as cattrs does
                exc.__notes__ = [*getattr(exc, "__notes__", []), IterableValidationNote(f"@ {k!r}", str(k), Any)]
                errors.append(exc)
        if errors:
            raise IterableValidationError("invalid table", errors, dict)
        return result

    return structure


def _window(value: Any, _: Any) -> Window:
    if isinstance(value, Window):
        return value
    try:
        return parse_window(value)
    except (ValueError, TypeError):
        raise ValueError(
            f'{value!r} is not a window: say minute, hour, day, week, month, "<N>h" or {{ hours = N }}'
            f" with N from 1 to {MAX_WINDOW_HOURS}"
        ) from None


def _kind(value: Any, _: Any) -> UpstreamKind:
    try:
        return parse_kind(values.string(value))
    except ValueError:
        raise ValueError(f"unknown type {value!r}") from None


def _urls(value: Any, _: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise TypeError(f"must be a list, not {values.kind_of(value)}")
    for i, item in enumerate(value):
        try:
            values.url(item)
        except (ValueError, TypeError) as exc:
            raise WireError(f"[{i}]", str(exc)) from None
    return tuple(value)


def _delay_ms(value: Any, _: Any) -> float | None:
    if value is None:
        return None
    if not 0 <= values.number(value) <= 60_000:
        raise ValueError("must be a number of milliseconds from 0 to 60000")
    return value  # type: ignore[no-any-return]  # kept as written: 5 stays 5 in the stored options


def _table(base: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    """A table must be a table: cattrs would index a list and fail with a confusing message."""

    def structure(value: Any, type_: Any) -> T:
        if not isinstance(value, Mapping):
            raise TypeError(f"must be a table, not {values.kind_of(value)}")
        return base(value, type_)

    return structure


def table_hook(converter: cattrs.Converter, cls: type[T], **overrides: Any) -> Callable[[Any, Any], T]:
    """cattrs' structure hook for an attrs class read from a table, with per-field ``override``s."""
    return _table(make_dict_structure_fn(cls, converter, **overrides))


def _checked(base: Callable[[Any, Any], T], check: Callable[[T], None]) -> Callable[[Any, Any], T]:
    def structure(value: Any, type_: Any) -> T:
        result = base(value, type_)
        check(result)
        return result

    return structure


def _budget_limits_something(budget: Budget) -> None:
    if budget.tokens is None and budget.requests is None and budget.cost is None:
        raise WireError("", "a budget limits tokens, requests, cost, or any of them")


MAX_AMOUNT = Decimal(10) ** 8  # the ledgers count 10^-10 units in 64-bit integers: a budget stays far below
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def amount(value: Any, _: Any = None) -> Decimal:
    """A money amount (a price per million tokens, a budget): a number or a decimal string, 0 or more, kept
    exactly as written (a TOML or JSON 0.15 is Decimal("0.15"), not its binary expansion)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"must be a number or a decimal string, not {values.kind_of(value)}")
    else:
        try:
            # repr of a float is the shortest text that reads back as it: what the file or body said
            result = Decimal(repr(value) if isinstance(value, float) else value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    if not result.is_finite() or not 0 <= result <= MAX_AMOUNT:
        raise ValueError(f"must be a finite amount from 0 to {MAX_AMOUNT}")
    return result


def optional_amount(value: Any, _: Any = None) -> Decimal | None:
    return None if value is None else amount(value)


def currency(value: Any, _: Any = None) -> str:
    """A three-letter currency code (ISO 4217 style: ``USD``, ``EUR``)."""
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise ValueError(f"{value!r} is not a currency: say a three-letter code such as USD or EUR")
    return value


def _plan_routes_somewhere(plan: Plan) -> None:
    if not plan.routes:
        raise WireError("routes", "must list at least one { model, weight }")


def _alias_routes_somewhere(alias: Alias) -> None:
    if not alias.routes:
        raise WireError("routes", "must list at least one { model, weight }")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_OPTIONAL_STRING = override(struct_hook=lambda v, _: None if v is None else values.string(v))
_OPTIONAL_URL = override(struct_hook=values.optional_url)


def _provider_fields() -> dict[str, Any]:
    return {
        "name": override(struct_hook=values.name),
        "type": override(struct_hook=_kind),
        "base_url": _OPTIONAL_URL,
        "max_event_bytes": override(struct_hook=values.byte_size),
        "max_response_bytes": override(struct_hook=values.byte_size),
    }


def _provider(converter: cattrs.Converter) -> Hook:
    def structure(value: Any, _: Any) -> ProviderTable:
        if not isinstance(value, Mapping):
            raise TypeError(f"must be a table, not {values.kind_of(value)}")
        if "type" not in value:
            raise WireError("type", "is required")
        try:
            kind = _kind(value["type"], None)
        except (ValueError, TypeError) as exc:
            raise WireError("type", str(exc)) from None
        return converter.structure(value, PROVIDER_TABLES[kind])

    return structure


def make_converter(*, stored: bool = False) -> cattrs.Converter:
    """``stored``: for what the database already holds, which must always read back: a plan imported from
    the original project may route nowhere (it serves nothing until an operator gives it routes)."""
    c = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    plan_check = (lambda plan: None) if stored else _plan_routes_somewhere

    c.register_structure_hook(str, values.string)
    c.register_structure_hook(int, values.integer)
    c.register_structure_hook(float, values.number)
    c.register_structure_hook(bool, values.boolean)
    c.register_structure_hook(datetime, values.timestamp)
    c.register_unstructure_hook(datetime, _iso)
    c.register_structure_hook(Decimal, amount)
    c.register_unstructure_hook(Decimal, _plain)  # exact in JSON, where a number would be a binary float
    c.register_structure_hook_factory(_is_sequence, lambda t: _sequence_factory(t, c))
    headers, options = Mapping[str, str], Mapping[str, Any]
    c.register_structure_hook_func(lambda t: t == headers, _mapping(values.header_name, values.header_value))
    c.register_structure_hook_func(lambda t: t == options, _mapping(values.string, lambda v, _: v))
    c.register_unstructure_hook_func(lambda t: t in (headers, options), dict)
    c.register_structure_hook(Window, _window)
    c.register_unstructure_hook(Window, lambda w: w.name)
    c.register_structure_hook(UpstreamKind, _kind)

    name = override(struct_hook=values.name)
    count = override(struct_hook=values.optional_count)
    tokens = override(struct_hook=values.optional_tokens)
    seconds = override(struct_hook=values.seconds)
    size = override(struct_hook=values.byte_size)
    optional_time = override(struct_hook=values.optional_timestamp)

    c.register_structure_hook(Route, table_hook(c, Route, model=name, weight=override(struct_hook=values.weight)))
    c.register_structure_hook(Alias, _checked(table_hook(c, Alias, name=name), _alias_routes_somewhere))
    money = override(struct_hook=optional_amount)
    c.register_structure_hook(
        Budget,
        _checked(table_hook(c, Budget, tokens=tokens, requests=tokens, cost=money), _budget_limits_something),
    )
    c.register_structure_hook(
        Plan, _checked(table_hook(c, Plan, name=name, rpm=count, max_concurrency=count), plan_check)
    )
    c.register_unstructure_hook(Plan, make_dict_unstructure_fn(Plan, c))
    c.register_structure_hook(
        ModelTable,
        table_hook(
            c,
            ModelTable,
            name=name,
            provider=name,
            upstream_model=override(struct_hook=lambda v, _: None if v is None else values.name(v)),
            rpm=count,
            tpm=count,
            rpd=count,
            max_concurrency=count,
            input_price=money,
            output_price=money,
            cache_read_price=money,
            cache_write_price=money,
        ),
    )
    c.register_structure_hook(UpstreamModel, lambda v, _: c.structure(v, ModelTable).to_model())
    c.register_unstructure_hook(UpstreamModel, _model_unstructure)
    c.register_structure_hook(
        Timeouts, table_hook(c, Timeouts, connect=seconds, read=seconds, first_event=seconds, total=seconds)
    )
    c.register_structure_hook(Account, table_hook(c, Account, project=_OPTIONAL_STRING))
    c.register_structure_hook(
        Upstream,
        table_hook(
            c,
            Upstream,
            name=name,
            # Rows: types are checked, policy is not, so an older row never stops the catalog from loading.
            base_url=override(struct_hook=values.string),
            headers=override(struct_hook=_mapping(values.string, values.string)),
            max_event_bytes=size,
            max_response_bytes=size,
        ),
    )
    c.register_structure_hook(ApiKey, table_hook(c, ApiKey, expires_at=optional_time, last_used_at=optional_time))

    c.register_structure_hook(Attempt, _attempt)
    c.register_unstructure_hook(Attempt, lambda a: {"model": a.model, "account": a.account, "outcome": a.summary})
    c.register_structure_hook(UsageStatus, _usage_status)
    c.register_structure_hook(UsageRecord, table_hook(c, UsageRecord))

    common = _provider_fields()
    c.register_structure_hook(ProviderTable, _provider(c))
    c.register_structure_hook(KeyedProviderTable, table_hook(c, KeyedProviderTable, **common))
    c.register_structure_hook(OpenAIProviderTable, table_hook(c, OpenAIProviderTable, **common))
    copilot_strings = ("client_id", "editor_version", "editor_plugin_version", "integration_id", "user_agent")
    c.register_structure_hook(
        CopilotProviderTable,
        table_hook(
            c,
            CopilotProviderTable,
            **common,
            token_url=_OPTIONAL_URL,
            github_base_url=_OPTIONAL_URL,
            **dict.fromkeys(copilot_strings, _OPTIONAL_STRING),
        ),
    )
    c.register_structure_hook(
        AntigravityProviderTable,
        table_hook(
            c,
            AntigravityProviderTable,
            **common,
            base_urls=override(struct_hook=_urls),
            oauth_token_url=_OPTIONAL_URL,
            **dict.fromkeys(("oauth_client_id", "oauth_client_secret", "user_agent"), _OPTIONAL_STRING),
        ),
    )
    c.register_structure_hook(
        MockProviderTable, table_hook(c, MockProviderTable, **common, delay_ms=override(struct_hook=_delay_ms))
    )
    c.register_structure_hook(CatalogDocument, table_hook(c, CatalogDocument, currency=override(struct_hook=currency)))
    return c


def _attempt(value: Any, _: Any) -> Attempt:
    """Rows keep an attempt as ``{model, account, outcome}``, the outcome being its summary."""
    if not isinstance(value, Mapping):
        raise TypeError(f"must be a table, not {values.kind_of(value)}")
    return Attempt.from_summary(
        model=values.string(value.get("model")),
        account=values.string(value.get("account")),
        summary=values.string(value.get("outcome")),
    )


def _usage_status(value: Any, _: Any) -> UsageStatus:
    try:
        return UsageStatus(values.string(value))
    except ValueError:  # a row written by an older version
        return UsageStatus.ERROR


def _plain(value: Decimal) -> str:
    """Positional notation, never an exponent: ``0.0000000002``, not ``2E-10``."""
    return format(value, "f")


def _price(value: Decimal | None) -> str | None:
    return None if value is None else _plain(value)


def _model_unstructure(model: UpstreamModel) -> dict[str, Any]:
    limits = model.limits
    prices = model.prices
    return {
        "name": model.name,
        "provider": model.upstream,
        "upstream_model": model.upstream_model,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "rpd": limits.rpd,
        "max_concurrency": limits.max_concurrency,
        "input_price": _price(prices.input),
        "output_price": _price(prices.output),
        "cache_read_price": _price(prices.cache_read),
        "cache_write_price": _price(prices.cache_write),
    }


converter = make_converter()
stored_converter = make_converter(stored=True)


def read(data: Any, type_: type[T], root: str = "", *, stored: bool = False) -> T:
    """``data`` structured as ``type_``; any failure is a WireError naming the offending field."""
    try:
        return (stored_converter if stored else converter).structure(data, type_)
    except WireError as exc:
        raise WireError(_prefix(root, exc.field), exc.reason) from None
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise wire_error(exc, root) from None


def _prefix(root: str, field: str) -> str:
    if not root or not field:
        return root or field
    return f"{root}{field}" if field.startswith("[") else f"{root}.{field}"
