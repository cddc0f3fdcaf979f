"""The dashboard's signed session cookie and the CSRF token bound to it (admin_session.py)."""

from __future__ import annotations

import pytest

from apipod.entrypoints.http.admin_session import AdminSessions

SECRET = "s" * 24
NOW = 1_800_000_000.0


def test_a_fresh_session_is_signed_in_for_reads_and_for_changes_with_its_token() -> None:
    sessions = AdminSessions(SECRET)
    cookie, csrf = sessions.issue(NOW)
    assert sessions.check(cookie, None, method="GET", now=NOW)
    assert sessions.check(cookie, None, method="head", now=NOW)
    assert sessions.check(cookie, csrf, method="POST", now=NOW + 60)
    assert sessions.csrf_of(cookie) == csrf
    assert SECRET not in cookie and SECRET not in csrf


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_change_needs_the_csrf_token_of_that_very_cookie(method: str) -> None:
    sessions = AdminSessions(SECRET)
    cookie, csrf = sessions.issue(NOW)
    other_cookie, other_csrf = sessions.issue(NOW)
    assert other_cookie != cookie and other_csrf != csrf  # every session has its own nonce
    assert not sessions.check(cookie, None, method=method, now=NOW)
    assert not sessions.check(cookie, "", method=method, now=NOW)
    assert not sessions.check(cookie, other_csrf, method=method, now=NOW)
    assert not sessions.check(cookie, csrf[:-1], method=method, now=NOW)
    assert sessions.check(cookie, csrf, method=method, now=NOW)


def test_a_session_expires_after_its_ttl() -> None:
    sessions = AdminSessions(SECRET, ttl_seconds=3600)
    cookie, csrf = sessions.issue(NOW)
    assert sessions.expires_at(cookie) == int(NOW + 3600)
    assert sessions.check(cookie, csrf, method="POST", now=NOW + 3599)
    assert not sessions.check(cookie, csrf, method="POST", now=NOW + 3600)
    assert not sessions.check(cookie, None, method="GET", now=NOW + 7200)


def test_another_process_with_the_same_secret_accepts_it_and_another_secret_does_not() -> None:
    cookie, csrf = AdminSessions(SECRET).issue(NOW)
    assert AdminSessions(SECRET).check(cookie, csrf, method="POST", now=NOW)
    assert not AdminSessions("t" * 24).check(cookie, csrf, method="GET", now=NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.replace("v1.", "v2.", 1),
        lambda c: "v1." + str(int(c.split(".")[1]) + 10_000) + "." + ".".join(c.split(".")[2:]),  # longer life
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: c.rpartition(".")[0],
        lambda c: c + ".",
        lambda c: "",
        lambda c: "x" * 10_000,
        lambda c: "v1.abc.def.ghi",
    ],
)
def test_a_tampered_or_malformed_cookie_is_refused(tamper: object) -> None:
    sessions = AdminSessions(SECRET)
    cookie, csrf = sessions.issue(NOW)
    bad = tamper(cookie)  # type: ignore[operator]
    assert not sessions.check(bad, csrf, method="GET", now=NOW)
    assert not sessions.check(bad, csrf, method="POST", now=NOW)


def test_no_cookie_is_not_signed_in() -> None:
    assert not AdminSessions(SECRET).check(None, None, method="GET", now=NOW)
