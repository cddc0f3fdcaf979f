"""SecretBox: sealed values round-trip, are bound to their key and their place, and say what went wrong
(naming APIPOD_SECRET_KEY, never the secret)."""

from __future__ import annotations

import base64

import pytest

from apipod.adapters.secret_box import (
    PREFIX,
    SecretBox,
    SecretKeyError,
    generate_key,
    is_secret_option,
    open_headers,
    open_options,
    open_with,
    parse_key,
    reseal,
    seal_headers,
    seal_options,
    stored_key_id,
)

SECRET = "sk-live-do-not-leak-0123456789"


def test_a_sealed_value_opens_to_the_plaintext_and_does_not_contain_it() -> None:
    box = SecretBox.from_text(generate_key())
    sealed = box.seal(SECRET, "upstream_accounts/up/0")
    assert sealed.startswith(f"{PREFIX}{box.key_id}:")
    assert SECRET not in sealed
    assert box.open(sealed, "upstream_accounts/up/0") == SECRET


def test_sealing_twice_gives_different_ciphertexts() -> None:
    box = SecretBox.from_text(generate_key())
    assert box.seal(SECRET, "p") != box.seal(SECRET, "p")


def test_the_key_id_is_a_short_fingerprint_of_the_key() -> None:
    key = generate_key()
    first, second = SecretBox.from_text(key), SecretBox.from_text(key)
    assert first.key_id == second.key_id
    assert len(first.key_id) == 8
    assert first.key_id != SecretBox.from_text(generate_key()).key_id
    assert key not in repr(first)


def test_the_wrong_key_names_the_variable_and_both_key_ids_but_not_the_secret() -> None:
    right, wrong = SecretBox.from_text(generate_key()), SecretBox.from_text(generate_key())
    sealed = right.seal(SECRET, "p")
    with pytest.raises(SecretKeyError) as caught:
        wrong.open(sealed, "p")
    message = caught.value.message
    assert "APIPOD_SECRET_KEY" in message
    assert right.key_id in message and wrong.key_id in message
    assert SECRET not in message


def test_a_key_read_from_a_file_is_described_with_the_variable() -> None:
    right = SecretBox.from_text(generate_key())
    wrong = SecretBox.from_text(generate_key(), source="/srv/apipod.db.secret-key")
    with pytest.raises(SecretKeyError, match=r"APIPOD_SECRET_KEY \(unset; read from /srv/apipod.db.secret-key\)"):
        wrong.open(right.seal(SECRET, "p"), "p")


@pytest.mark.parametrize("position", [len(PREFIX) + 9, -2, -30])
def test_a_tampered_value_does_not_open(position: int) -> None:
    box = SecretBox.from_text(generate_key())
    sealed = box.seal(SECRET, "p")
    flipped = "A" if sealed[position] != "A" else "B"
    tampered = sealed[:position] + flipped + sealed[position + 1 :]
    with pytest.raises(SecretKeyError, match="APIPOD_SECRET_KEY") as caught:
        box.open(tampered, "p")
    assert SECRET not in caught.value.message


def test_a_truncated_value_does_not_open() -> None:
    box = SecretBox.from_text(generate_key())
    with pytest.raises(SecretKeyError, match="altered"):
        box.open(f"{PREFIX}{box.key_id}:AAAA", "p")


def test_a_value_copied_to_another_place_does_not_open() -> None:
    box = SecretBox.from_text(generate_key())
    sealed = box.seal(SECRET, "upstream_accounts/a/0")
    with pytest.raises(SecretKeyError, match="upstream_accounts/b/0"):
        box.open(sealed, "upstream_accounts/b/0")
    with pytest.raises(SecretKeyError):
        box.open(sealed, "upstream_accounts/a/1")


def test_legacy_plaintext_is_read_as_is() -> None:
    box = SecretBox.from_text(generate_key())
    assert stored_key_id(SECRET) is None
    assert box.open(SECRET, "p") == SECRET
    assert open_with(None, SECRET, "p") == SECRET


def test_a_sealed_value_without_a_key_names_the_variable() -> None:
    sealed = SecretBox.from_text(generate_key()).seal(SECRET, "p")
    with pytest.raises(SecretKeyError, match="set APIPOD_SECRET_KEY"):
        open_with(None, sealed, "p")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        base64.urlsafe_b64encode(b"x" * 16).decode(),  # AES-128 size: refused, the key is AES-256
        base64.urlsafe_b64encode(b"x" * 33).decode(),
        base64.b64encode(b"\xff" * 32).decode(),  # standard base64 ('/'), not URL-safe
        "!" * 44,
    ],
)
def test_a_malformed_key_is_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(SecretKeyError, match="APIPOD_SECRET_KEY must be 32 random bytes") as caught:
        parse_key(text)
    assert not text or text not in caught.value.message


def test_a_generated_key_parses_with_or_without_padding() -> None:
    key = generate_key()
    assert len(parse_key(key)) == 32
    assert parse_key(key.rstrip("=")) == parse_key(key)
    assert parse_key(f"  {key}\n") == parse_key(key)


def test_reseal_moves_values_to_the_new_key_and_seals_plaintext() -> None:
    old, new = SecretBox.from_text(generate_key()), SecretBox.from_text(generate_key())
    moved = reseal(old, new, old.seal(SECRET, "p"), "p")
    assert moved is not None and new.open(moved, "p") == SECRET
    assert reseal(old, new, moved, "p") is None  # already under the new key
    sealed_legacy = reseal(new, new, SECRET, "p")
    assert sealed_legacy is not None and new.open(sealed_legacy, "p") == SECRET


def test_secret_options_are_the_credentials_not_their_urls() -> None:
    assert is_secret_option("oauth_client_secret")
    assert is_secret_option("refresh_token")
    assert is_secret_option("Api_Key")
    assert not is_secret_option("oauth_token_url")
    assert not is_secret_option("token_url")
    assert not is_secret_option("oauth_client_id")
    assert not is_secret_option("delay_ms")


def test_headers_and_secret_options_are_sealed_in_place() -> None:
    box = SecretBox.from_text(generate_key())
    headers = seal_headers(box, "up", {"x-api-key": SECRET})
    options = seal_options(
        box, "up", {"oauth_client_secret": SECRET, "oauth_client_id": "public-id", "delay_ms": 5, "token": 7}
    )
    assert SECRET not in repr(headers) + repr(options)
    assert options["oauth_client_id"] == "public-id" and options["delay_ms"] == 5 and options["token"] == 7
    assert open_headers(box, "up", dict(headers)) == {"x-api-key": SECRET}
    assert open_options(box, "up", options)["oauth_client_secret"] == SECRET
    with pytest.raises(SecretKeyError):
        open_headers(box, "other", dict(headers))


def test_a_generated_key_never_reads_as_a_command_line_option() -> None:
    assert not any(generate_key().startswith("-") for _ in range(2000))
