"""What the service keeps beside the search's rows: API tokens (hashed) and exports. A part of
``Store``, which provides ``_session`` and ``safe_url``.

An export row is created ``queued`` by the API, claimed (compare-and-set) by the process the
service's supervisor starts for it, kept alive by that process's heartbeat, and finished
``complete`` (with its zip's path and card) or ``failed`` (with the reason)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update

from nas.status import EXPORT_STATUSES, ExportStatus
from nas.store._convert import _export, _token
from nas.store._models import ExportModel, TokenModel
from nas.store._records import ExportRecord, NotFoundError, StoreError, TokenRecord, now


class ServiceRows:
    def create_token(self, tenant: str) -> tuple[str, TokenRecord]:
        """A new token for ``tenant``: returned once, stored as its SHA-256 only."""
        tenant = tenant.strip()
        if not tenant or len(tenant) > 100:
            raise ValueError("tenant: give a name of 1 to 100 characters")
        token = "nas_" + secrets.token_urlsafe(32)
        with self._session() as s:
            row = TokenModel(tenant=tenant, token_hash=_token_hash(token), prefix=token[:12], created_at=now())
            s.add(row)
            s.flush()
            return token, _token(row)

    def tenant_of(self, token: str) -> str | None:
        """The tenant a valid (not revoked) token belongs to, else None."""
        with self._session() as s:
            row = s.scalar(select(TokenModel).where(TokenModel.token_hash == _token_hash(token)))
            return row.tenant if row is not None and row.revoked_at is None else None

    def tokens(self, tenant: str | None = None) -> list[TokenRecord]:
        with self._session() as s:
            query = select(TokenModel).order_by(TokenModel.id)
            if tenant is not None:
                query = query.where(TokenModel.tenant == tenant)
            return [_token(t) for t in s.scalars(query)]

    def revoke_token(self, ref: str) -> TokenRecord:
        """Revoke a token by id or by its printed prefix."""
        with self._session() as s:
            query = select(TokenModel)
            query = query.where(TokenModel.id == int(ref)) if ref.isdigit() else query.where(TokenModel.prefix == ref)
            rows = list(s.scalars(query.limit(2)))
            if len(rows) != 1:
                raise NotFoundError(f"token {ref!r} {'is ambiguous' if rows else 'is unknown'}; `nas token list`")
            rows[0].revoked_at = rows[0].revoked_at or now()
            return _token(rows[0])

    def create_export(
        self, job_id: int, candidate_id: int, *, request: dict[str, Any], tenant: str | None = None
    ) -> ExportRecord:
        """A queued export of the candidate, for the service's supervisor to run."""
        with self._session() as s:
            row = ExportModel(
                job_id=job_id, candidate_id=candidate_id, tenant=tenant, status=ExportStatus.QUEUED, request=request, card={},
                created_at=now(),
            )  # fmt: skip
            s.add(row)
            s.flush()
            return _export(row)

    def get_export(self, export_id: int) -> ExportRecord:
        with self._session() as s:
            return _export(self._export(s, export_id))

    def list_exports(
        self, *, status: str | Sequence[str] | None = None, tenant: str | None = None, limit: int | None = 100
    ) -> list[ExportRecord]:
        """The oldest first; ``tenant`` None means every tenant's."""
        with self._session() as s:
            query = select(ExportModel).where(*_export_filters(status, tenant)).order_by(ExportModel.id)
            return [_export(e) for e in s.scalars(query.limit(limit))]

    def count_exports(self, *, status: str | Sequence[str] | None = None, tenant: str | None = None) -> int:
        with self._session() as s:
            return s.scalar(select(func.count(ExportModel.id)).where(*_export_filters(status, tenant)))

    def claim_export(self, export_id: int, owner: str) -> ExportRecord:
        """Mark the export running in ``owner`` (host:pid) if it is still queued: two processes
        started for one export cannot both run it."""
        with self._session() as s:
            row = self._export(s, export_id, lock=True)
            if row.status != ExportStatus.QUEUED:
                raise StoreError(f"export {export_id} is {row.status} (owner {row.owner}), not queued: not claimed")
            row.status, row.owner, row.heartbeat_at, row.started_at = ExportStatus.RUNNING, owner, now(), now()
            return _export(row)

    def export_heartbeat(self, export_id: int, owner: str) -> None:
        """Record that ``owner``, the process running the export, is alive."""
        with self._session() as s:
            s.execute(
                update(ExportModel)
                .where(ExportModel.id == export_id, ExportModel.owner == owner)
                .values(heartbeat_at=now())
            )

    def finish_export(
        self,
        export_id: int,
        status: str,
        *,
        error: str | None = None,
        path: str | None = None,
        card: dict[str, Any] | None = None,
    ) -> ExportRecord:
        """Record the export ``complete`` (with its zip's ``path`` and ``card``) or ``failed`` (with
        ``error``), or put it back ``queued`` (its run was stopped with the service, not by fault)."""
        if status not in (ExportStatus.COMPLETE, ExportStatus.FAILED, ExportStatus.QUEUED):
            raise ValueError(f"status: an export finishes complete or failed, or is queued again; got {status!r}")
        with self._session() as s:
            row = self._export(s, export_id, lock=True)
            row.status, row.error, row.owner = status, error, None
            row.finished_at = None if status == ExportStatus.QUEUED else now()
            if status == ExportStatus.COMPLETE:
                row.path, row.card = path, card or {}
            return _export(row)

    def _export(self, s: Any, export_id: int, *, lock: bool = False) -> ExportModel:
        row = s.get(ExportModel, export_id, with_for_update=lock)
        if row is None:
            raise NotFoundError(f"export {export_id} is not in {self.safe_url}")
        return row


def _export_filters(status: str | Sequence[str] | None, tenant: str | None) -> list:
    filters = []
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        unknown = [x for x in statuses if x not in EXPORT_STATUSES]
        if unknown:
            raise ValueError(f"status: {', '.join(map(repr, unknown))} not among {', '.join(EXPORT_STATUSES)}")
        filters.append(ExportModel.status.in_(statuses))
    if tenant is not None:
        filters.append(ExportModel.tenant == tenant)
    return filters


def _token_hash(token: str) -> str:
    # tokens are 256 random bits: a plain SHA-256 cannot be brute-forced, no slow KDF needed
    return hashlib.sha256(token.encode()).hexdigest()
