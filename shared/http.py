"""Service-to-service REST calls (user-facing reads only; facts otherwise cross as events)."""

from typing import Any

import httpx

from shared.context import current_correlation_id
from shared.errors import ProblemError
from shared.observability import CORRELATION_HEADER


class UpstreamUnavailable(ProblemError):
    def __init__(self, service: str, detail: str) -> None:
        super().__init__(503, "upstream_unavailable", f"依赖的服务（{service}）暂不可用", detail)


class ServiceClient:
    """Calls another service with this service's own token, a timeout and the correlation id."""

    def __init__(self, service: str, base_url: str, token: str, *, timeout: float = 3.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.service = service
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport,
                                         headers={"Authorization": f"Bearer {token}"})

    async def get_json(self, path: str, **params: Any) -> Any:
        """GET path → JSON; 404 → None; down, slow or failing → UpstreamUnavailable (503)."""
        try:
            response = await self._client.get(path, params=params or None,
                                              headers={CORRELATION_HEADER: current_correlation_id()})
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(self.service, f"{type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise UpstreamUnavailable(self.service, f"HTTP {response.status_code}")
        return response.json()

    async def post_json(self, path: str, body: Any) -> Any:
        """POST a JSON body → JSON (a read that takes a body, e.g. many ids); errors as `get_json`."""
        try:
            response = await self._client.post(path, json=body,
                                               headers={CORRELATION_HEADER: current_correlation_id()})
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(self.service, f"{type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise UpstreamUnavailable(self.service, f"HTTP {response.status_code}")
        return response.json()

    async def close(self) -> None:
        await self._client.aclose()
