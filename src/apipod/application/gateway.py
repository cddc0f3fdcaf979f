"""The Gateway facade: the routing and governance engine as one object, used by the HTTP service, the CLI
and embedding code alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from apipod.application.admit_request import AdmitRequest
from apipod.application.authenticate_key import AuthenticateKey, Principal
from apipod.application.chat_turn import ChatTurns
from apipod.application.complete_chat import CompleteChat
from apipod.application.dispatch import Dispatcher
from apipod.application.issue_api_key import IssueApiKey, ManageKeys
from apipod.application.ports import (
    CatalogStore,
    Clock,
    IdGenerator,
    KeyRepository,
    LimitStore,
    QuotaLedger,
    Randomness,
    UpstreamRegistry,
    UsageLog,
)
from apipod.application.record_usage import RecordUsage
from apipod.application.reserve_quota import ReserveQuota
from apipod.application.route_model import RouteModel
from apipod.application.settings import GovernanceSettings
from apipod.application.signature_memory import SignatureMemory
from apipod.application.stream_chat import StreamChat
from apipod.domain.catalog import Catalog, find_plan
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.keys import ApiKey, IssuedKey
from apipod.domain.stream import StreamEvent


class Gateway:
    """Authenticate, route, admit, reserve, call, settle and record, for a key and a canonical request.

    Build it with ``apipod.bootstrap`` (``in_memory_gateway``, ``open_gateway``) or pass your own adapters.
    """

    def __init__(
        self,
        *,
        keys: KeyRepository,
        catalog: CatalogStore,
        ledger: QuotaLedger,
        usage_log: UsageLog,
        limits: LimitStore,
        upstreams: UpstreamRegistry,
        clock: Clock,
        randomness: Randomness,
        ids: IdGenerator,
        settings: GovernanceSettings | None = None,
    ) -> None:
        settings = settings or GovernanceSettings()
        self.settings = settings
        self.keys = keys
        self.catalog = catalog
        self.ledger = ledger
        self.usage_log = usage_log
        self.clock = clock
        self.authenticator = AuthenticateKey(keys, catalog, clock, settings)
        self.router = RouteModel(catalog, randomness)
        turns = ChatTurns(
            route=self.router,
            admit=AdmitRequest(limits, settings),
            quota=ReserveQuota(ledger, clock, settings),
            dispatcher=Dispatcher(upstreams, limits, randomness, settings),
            record=RecordUsage(usage_log, clock),
            clock=clock,
            ids=ids,
            settings=settings,
        )
        self.signatures = SignatureMemory(clock)
        self._complete = CompleteChat(turns, self.signatures)
        self._stream = StreamChat(turns, clock, self.signatures)
        self._issue = IssueApiKey(keys, catalog, clock, randomness, ids)
        self._manage = ManageKeys(keys)

    async def authenticate(self, api_key: str | None) -> Principal:
        """Raises AuthenticationError (401) or PermissionDeniedError (403)."""
        return await self.authenticator.execute(api_key)

    async def complete(self, api_key: str | Principal, request: ChatRequest) -> ChatResult:
        principal = api_key if isinstance(api_key, Principal) else await self.authenticate(api_key)
        return await self._complete.execute(principal, request)

    async def stream(self, api_key: str | Principal, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Everything up to the upstream's first event happens before this returns; close the iterator
        (``aclose``) if you stop early, so the upstream call is cancelled and the books closed at once."""
        principal = api_key if isinstance(api_key, Principal) else await self.authenticate(api_key)
        return await self._stream.execute(principal, request)

    async def models(self, principal: Principal) -> tuple[str, ...]:
        """The model names the key may ask for."""
        return principal.plan.model_names()

    async def issue_key(self, *, name: str, plan: str, expires_at: datetime | None = None) -> IssuedKey:
        return await self._issue.execute(name=name, plan=plan, expires_at=expires_at)

    async def list_keys(self) -> list[ApiKey]:
        return await self._manage.list()

    async def revoke_key(self, key_id: str) -> ApiKey:
        key = await self._manage.set_active(key_id, active=False)
        self.authenticator.forget(key_id)
        return key

    async def apply_catalog(self, catalog: Catalog) -> None:
        """Upsert every upstream, model and plan of ``catalog`` by name (upstreams first, plans last)."""
        for upstream in catalog.upstreams:
            await self.catalog.upsert_upstream(upstream)
        for model in catalog.models:
            await self.catalog.upsert_model(model)
        for plan in catalog.plans:
            await self.catalog.upsert_plan(plan)

    async def has_plan(self, name: str) -> bool:
        return find_plan(await self.catalog.snapshot(), name) is not None
