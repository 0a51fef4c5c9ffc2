"""Bearer-token checks for the model server.

A request carries ``Authorization: Bearer sy_<id>_<secret>``. A token is looked up by
id and its secret compared by hash (``store/tokens_store.py``); a good answer is kept
for :data:`CACHE_SECONDS` so the hot path does not query the database per request (a
revoked token stops working within that time). No header or an unknown token: 401; a
token whose role may not call the route: 403.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING

from fastapi import Request

from shipyard.core.errors import PermissionDeniedError, UnauthenticatedError

if TYPE_CHECKING:
    from shipyard.store.tokens_store import ApiToken, SqlTokenStore

CACHE_SECONDS = 30.0
_MAX_CACHED = 10_000


class TokenCheck:
    """Verifies tokens against the store, with a short cache of good answers."""

    def __init__(self, store: SqlTokenStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, ApiToken]] = {}
        self._lock = threading.Lock()

    def verify(self, header: str | None) -> ApiToken:
        if not header:
            raise UnauthenticatedError(
                "this server needs a token: send 'Authorization: Bearer <token>' "
                "(`shipyard tokens create NAME --role predict` makes one)"
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the Authorization header reads 'Bearer <token>'")
        token = token.strip()
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        found = self.store.verify(token)
        if found is None:
            raise UnauthenticatedError("the token is unknown, revoked or expired")
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (now, found)
        return found

    def dependency(self, roles: Collection[str] | None) -> Callable[[Request], Awaitable[None]]:
        """A FastAPI dependency: any valid token (``roles`` None) or one of ``roles``."""

        async def check(request: Request) -> None:
            token = self.verify(request.headers.get("authorization"))
            if roles is not None and token.role not in roles:
                raise PermissionDeniedError(
                    f"token {token.name!r} has the {token.role} role; this route needs one of "
                    f"{', '.join(sorted(roles))}"
                )

        return check
