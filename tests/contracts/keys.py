"""Behaviour every KeyRepository must show. Subclass and provide an (async) ``repo`` fixture that yields an
empty repository."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from apipod.application.ports import KeyRepository
from apipod.domain.errors import ConflictError, NotFoundError
from apipod.domain.keys import digest_of
from tests.contracts.builders import NOW, make_key, plaintext_for


class KeyRepositoryContract:
    @pytest.fixture
    def repo(self) -> KeyRepository:
        raise NotImplementedError("subclasses provide an empty KeyRepository")

    async def test_get_returns_the_key_added(self, repo: KeyRepository) -> None:
        key = make_key("key_1", expires_at=NOW + timedelta(days=30))

        await repo.add(key)

        assert await repo.get("key_1") == key

    async def test_get_unknown_is_none(self, repo: KeyRepository) -> None:
        assert await repo.get("nope") is None

    async def test_by_digest_finds_the_key_of_a_plaintext(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1"))
        await repo.add(make_key("key_2", name="bob"))

        found = await repo.by_digest(digest_of(plaintext_for("key_2")))

        assert found is not None
        assert found.id == "key_2"
        assert found.name == "bob"

    async def test_by_digest_unknown_is_none(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1"))

        assert await repo.by_digest(digest_of("apk_unknown")) is None

    async def test_by_digest_returns_inactive_keys_too(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1", active=False))

        found = await repo.by_digest(digest_of(plaintext_for("key_1")))

        assert found is not None
        assert found.active is False

    async def test_add_with_an_existing_id_is_a_conflict(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1"))

        with pytest.raises(ConflictError):
            await repo.add(make_key("key_1", plaintext="apk_another_plaintext_entirely"))
        assert len(await repo.list()) == 1

    async def test_add_with_an_existing_digest_is_a_conflict(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1", plaintext="apk_shared"))

        with pytest.raises(ConflictError):
            await repo.add(make_key("key_2", plaintext="apk_shared"))
        assert await repo.get("key_2") is None

    async def test_list_is_oldest_first(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_b", created_at=NOW + timedelta(minutes=5)))
        await repo.add(make_key("key_c", created_at=NOW + timedelta(days=1)))
        await repo.add(make_key("key_a", created_at=NOW))

        assert [k.id for k in await repo.list()] == ["key_a", "key_b", "key_c"]

    async def test_list_of_an_empty_repository_is_empty(self, repo: KeyRepository) -> None:
        assert await repo.list() == []

    async def test_set_active_revokes_and_returns_the_new_record(self, repo: KeyRepository) -> None:
        key = make_key("key_1", last_used_at=NOW + timedelta(hours=1))
        await repo.add(key)

        revoked = await repo.set_active("key_1", active=False)

        assert revoked.active is False
        assert revoked.id == key.id
        assert revoked.name == key.name
        assert revoked.created_at == key.created_at
        assert revoked.last_used_at == key.last_used_at
        assert await repo.get("key_1") == revoked
        by_digest = await repo.by_digest(key.digest)
        assert by_digest is not None
        assert by_digest.active is False

    async def test_set_active_can_reactivate(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1", active=False))

        restored = await repo.set_active("key_1", active=True)

        assert restored.active is True
        stored = await repo.get("key_1")
        assert stored is not None
        assert stored.active is True

    async def test_set_active_of_an_unknown_key_is_not_found(self, repo: KeyRepository) -> None:
        with pytest.raises(NotFoundError):
            await repo.set_active("nope", active=False)

    async def test_touch_notes_the_last_use(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1"))
        when = NOW + timedelta(hours=2, seconds=7)

        await repo.touch("key_1", when)

        stored = await repo.get("key_1")
        assert stored is not None
        assert stored.last_used_at == when
        assert stored.active is True

    async def test_touch_of_an_unknown_key_is_ignored(self, repo: KeyRepository) -> None:
        await repo.touch("nope", NOW)

        assert await repo.get("nope") is None

    async def test_datetimes_come_back_timezone_aware(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1", expires_at=NOW + timedelta(days=1)))
        await repo.touch("key_1", NOW + timedelta(minutes=1))

        stored = await repo.get("key_1")

        assert stored is not None
        assert stored.created_at.utcoffset() == timedelta(0)
        assert stored.expires_at is not None
        assert stored.expires_at.utcoffset() == timedelta(0)
        assert stored.last_used_at is not None
        assert stored.last_used_at.utcoffset() == timedelta(0)

    async def test_update_replaces_the_changeable_fields(self, repo: KeyRepository) -> None:
        key = make_key("key_1", last_used_at=NOW + timedelta(hours=1))
        await repo.add(key)
        wanted = attrs.evolve(
            key, name="carol", plan="pro", active=False, expires_at=NOW + timedelta(days=3), last_used_at=None
        )

        updated = await repo.update(wanted)

        assert updated == attrs.evolve(wanted, last_used_at=key.last_used_at)
        assert await repo.get("key_1") == updated

    async def test_update_of_an_unknown_key_is_not_found(self, repo: KeyRepository) -> None:
        with pytest.raises(NotFoundError):
            await repo.update(make_key("nope"))

    async def test_a_rotated_key_is_found_by_its_new_and_its_previous_secret(self, repo: KeyRepository) -> None:
        key = make_key("key_1")
        await repo.add(key)
        new_digest = digest_of("apk_the_new_secret")
        rotated = attrs.evolve(
            key,
            digest=new_digest,
            prefix="apk_the_new_",
            previous_digest=key.digest,
            previous_valid_until=NOW + timedelta(minutes=5),
        )

        await repo.update(rotated)

        assert await repo.by_digest(new_digest) == rotated
        assert await repo.by_digest(key.digest) == rotated
        await repo.update(attrs.evolve(rotated, previous_digest=None, previous_valid_until=None))
        assert await repo.by_digest(key.digest) is None
        assert (await repo.by_digest(new_digest) or key).previous_digest is None

    async def test_update_to_another_keys_secret_is_a_conflict(self, repo: KeyRepository) -> None:
        await repo.add(make_key("key_1"))
        other = make_key("key_2")
        await repo.add(other)

        with pytest.raises(ConflictError):
            await repo.update(attrs.evolve(other, digest=digest_of(plaintext_for("key_1"))))
        assert await repo.get("key_2") == other
