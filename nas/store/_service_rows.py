"""What the service keeps beside the search's rows: API tokens (hashed) and exports. A part of
``Store``, which provides ``_session`` and ``safe_url``."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select

from nas.store._models import ExportModel, TokenModel
from nas.store._records import ExportRecord, NotFoundError, TokenRecord, now, utc


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

    def add_export(self, job_id: int, candidate_id: int, *, path: str, card: dict[str, Any]) -> ExportRecord:
        with self._session() as s:
            row = ExportModel(job_id=job_id, candidate_id=candidate_id, path=path, card=card, created_at=now())
            s.add(row)
            s.flush()
            return _export(row)

    def get_export(self, export_id: int) -> ExportRecord:
        with self._session() as s:
            row = s.get(ExportModel, export_id)
            if row is None:
                raise NotFoundError(f"export {export_id} is not in {self.safe_url}")
            return _export(row)


def _token_hash(token: str) -> str:
    # tokens are 256 random bits: a plain SHA-256 cannot be brute-forced, no slow KDF needed
    return hashlib.sha256(token.encode()).hexdigest()


def _token(m: TokenModel) -> TokenRecord:
    return TokenRecord(
        id=m.id, tenant=m.tenant, prefix=m.prefix, created_at=utc(m.created_at), revoked_at=utc(m.revoked_at)
    )


def _export(m: ExportModel) -> ExportRecord:
    return ExportRecord(
        id=m.id, job_id=m.job_id, candidate_id=m.candidate_id, path=m.path, card=m.card, created_at=utc(m.created_at)
    )
