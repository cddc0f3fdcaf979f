"""``GET /admin/state``: live health of every upstream model and account, queue depth, usage backlog."""

from __future__ import annotations

from typing import Any

from apipod.application.live_state import AccountState, GatewayState
from apipod.dialects.catalog_wire import converter
from apipod.entrypoints.http.admin_api import AdminCall, Answer


def _account(state: AccountState) -> dict[str, Any]:
    return {
        "account": state.account,
        "health": state.health,
        "until": None if state.until is None else converter.unstructure(state.until),
        "reason": state.reason,
        "failures_in_a_row": state.failures_in_a_row,
        "attempts": state.attempts,
        "error_rate": None if state.error_rate is None else round(state.error_rate, 4),
    }


def state_view(state: GatewayState) -> dict[str, Any]:
    return {
        "at": converter.unstructure(state.at),
        "in_flight": state.in_flight,
        "queue_depth": state.queue_depth,
        "usage_backlog": state.usage_backlog,
        "error_rate_window_seconds": state.error_window_seconds,
        "models": [
            {
                "model": m.model,
                "upstream": m.upstream,
                "in_flight": m.in_flight,
                "accounts": [_account(a) for a in m.accounts],
            }
            for m in state.models
        ],
    }


async def live_state(call: AdminCall) -> Answer:
    return Answer(state_view(await call.gateway.state()))
