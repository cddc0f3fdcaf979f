"""The Gateway facade: the routing and governance engine as one object, used by the HTTP service, the CLI
and embedding code alike. It only delegates; the composition root (``apipod.bootstrap``) builds it."""

from __future__ import annotations

from datetime import datetime

from apipod.application.authenticate_key import AuthenticateKey, Principal
from apipod.application.chat_pipeline import AfterAnswer
from apipod.application.complete_chat import CompleteChat
from apipod.application.issue_api_key import IssueApiKey, ManageKeys
from apipod.application.key_standing import BudgetStanding, KeyStanding
from apipod.application.live_state import GatewayState, LiveState
from apipod.application.manage_keys import AdministerKeys, KeyChange, KeyFilter, KeyPage
from apipod.application.ports import CatalogStore, IdGenerator, QuotaLedger, UpstreamRegistry, UsageLog
from apipod.application.signature_memory import SignatureMemory
from apipod.application.stream_chat import ChatStream, StreamChat
from apipod.domain.catalog import Catalog, find_upstream
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import NotFoundError
from apipod.domain.keys import ApiKey, IssuedKey


class Gateway:
    """Authenticate, route, admit, reserve, call, settle and record, for a key and a canonical request.

    Build it with ``apipod.open_gateway`` (or the container of ``apipod.bootstrap.container``).
    """

    def __init__(
        self,
        authenticator: AuthenticateKey,
        completion: CompleteChat,
        streaming: StreamChat,
        issuing: IssueApiKey,
        key_admin: ManageKeys,
        standing: KeyStanding,
        catalog: CatalogStore,
        ledger: QuotaLedger,
        usage_log: UsageLog,
        signatures: SignatureMemory,
        upstreams: UpstreamRegistry,
        ids: IdGenerator,
        administration: AdministerKeys,
        live_state: LiveState,
    ) -> None:
        self.authenticator = authenticator
        self.catalog = catalog
        self.ledger = ledger
        self.usage_log = usage_log
        self.signatures = signatures
        self._completion = completion
        self._streaming = streaming
        self._issuing = issuing
        self._key_admin = key_admin
        self._standing = standing
        self._upstreams = upstreams
        self._ids = ids
        self._administration = administration
        self._live_state = live_state

    def new_request_id(self) -> str:
        return self._ids.new_id("req_")

    async def authenticate(self, api_key: str | None) -> Principal:
        """Raises AuthenticationError (401) or PermissionDeniedError (403)."""
        return await self.authenticator.execute(api_key)

    async def complete(
        self,
        api_key: str | Principal,
        request: ChatRequest,
        *,
        request_id: str | None = None,
        after_answer: AfterAnswer | None = None,
    ) -> ChatResult:
        """``request_id`` joins the answer to its usage row (one is made when not given). A caller that sends
        the answer on (the HTTP layer) may pass ``after_answer``: the usage row and the telemetry report are
        handed to it, to run once the answer is out. The quota is settled and every slot freed before this
        returns either way."""
        principal = api_key if isinstance(api_key, Principal) else await self.authenticate(api_key)
        return await self._completion.execute(
            principal, request, request_id or self.new_request_id(), after_answer=after_answer
        )

    async def stream(
        self, api_key: str | Principal, request: ChatRequest, *, request_id: str | None = None
    ) -> ChatStream:
        """Everything up to the upstream's first event happens before this returns; close the iterator
        (``aclose``) if you stop early, so the upstream call is cancelled and the books closed at once."""
        principal = api_key if isinstance(api_key, Principal) else await self.authenticate(api_key)
        return await self._streaming.execute(principal, request, request_id or self.new_request_id())

    async def budgets(self, principal: Principal) -> tuple[BudgetStanding, ...]:
        """Per budget window and unit of the key's plan: the limit, what is used (held included), when it resets."""
        return await self._standing.execute(principal)

    async def models(self, principal: Principal) -> tuple[str, ...]:
        """The model names the key may ask for."""
        return principal.plan.model_names()

    async def issue_key(self, *, name: str, plan: str, expires_at: datetime | None = None) -> IssuedKey:
        return await self._issuing.execute(name=name, plan=plan, expires_at=expires_at)

    async def list_keys(self) -> list[ApiKey]:
        return await self._key_admin.list()

    async def revoke_key(self, key_id: str) -> ApiKey:
        key = await self._key_admin.set_active(key_id, active=False)
        self.authenticator.forget(key_id)
        return key

    async def page_keys(self, where: KeyFilter, *, limit: int, after: str | None = None) -> KeyPage:
        return await self._administration.page(where, limit=limit, after=after)

    async def get_key(self, key_id: str) -> ApiKey:
        """Raises NotFoundError."""
        return await self._administration.get(key_id)

    async def change_key(self, key_id: str, change: KeyChange) -> ApiKey:
        """Name, plan, expiry, active: the fields ``change`` gives. Seen by this process at once, by others
        through their key caches (``KeyChangeListener`` on PostgreSQL)."""
        key = await self._administration.change(key_id, change)
        self.authenticator.forget(key_id)
        return key

    async def reactivate_key(self, key_id: str) -> ApiKey:
        key = await self._key_admin.set_active(key_id, active=True)
        self.authenticator.forget(key_id)
        return key

    async def rotate_key(self, key_id: str, *, grace_seconds: float = 0) -> IssuedKey:
        """A new secret for the same key; the old one is refused at once, or after ``grace_seconds``."""
        issued = await self._administration.rotate(key_id, grace_seconds=grace_seconds)
        self.authenticator.forget(key_id)
        return issued

    async def key_budgets(self, key_id: str) -> tuple[BudgetStanding, ...]:
        return await self._administration.budgets(key_id)

    async def state(self) -> GatewayState:
        """Per upstream model and account: health, cooldowns, recent errors; queue depth; usage backlog."""
        return await self._live_state.execute()

    async def apply_catalog(self, catalog: Catalog) -> None:
        """Upsert every upstream, model and plan of ``catalog`` by name (upstreams first, plans last), and
        set its currency. What the store holds already, equal, is left alone: each write bumps the catalog's
        version, and every process (every worker) reloads on a new version; a restart changes nothing."""
        held = await self.catalog.snapshot()
        if held.currency != catalog.currency:
            await self.catalog.set_currency(catalog.currency)
        upstreams = {upstream.name: upstream for upstream in held.upstreams}
        for upstream in catalog.upstreams:
            if upstreams.get(upstream.name) != upstream:
                await self.catalog.upsert_upstream(upstream)
        models = {model.name: model for model in held.models}
        for model in catalog.models:
            if models.get(model.name) != model:
                await self.catalog.upsert_model(model)
        plans = {plan.name: plan for plan in held.plans}
        for plan in catalog.plans:
            if plans.get(plan.name) != plan:
                await self.catalog.upsert_plan(plan)

    async def upstream_models(self, provider: str) -> list[str]:
        """The model ids a configured provider offers (for writing ``upstream_model`` in the catalog).
        Raises NotFoundError for an unknown provider, UpstreamError when it cannot be asked."""
        upstream = find_upstream(await self.catalog.snapshot(), provider)
        if upstream is None:
            raise NotFoundError(f"No provider named '{provider}'.")
        return await self._upstreams.client_for(upstream).list_models(upstream)
