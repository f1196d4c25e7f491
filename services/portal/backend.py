"""Calls to the five services with the signed-in person's own token (backend-for-frontend).

Every refusal of a service is carried to the page as its own Chinese `title`/`detail` (RFC 9457
problem+json); a service that is down, slow or answers something else becomes a Chinese message that
names it. Nothing here is ever shown as a stack trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.context import current_correlation_id
from shared.observability import CORRELATION_HEADER

SERVICE_NAMES = {
    "registry": "人员名册服务",
    "selection": "随机抽选服务",
    "casework": "监督案件服务",
    "appraisal": "考核服务",
    "finance": "补助经费服务",
    "notify": "通知服务",
}


@dataclass
class ServiceError(Exception):
    """A service's refusal or absence, as the page shows it."""

    service: str
    status: int
    code: str
    title: str
    detail: str | None = None
    # the problem document's other members (registry's import `errors` with row, column and reason; a validation
    # error's field `errors`): shown beside the form, as the service wrote them
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def service_name(self) -> str:
        return SERVICE_NAMES.get(self.service, self.service)


def error_of(service: str, response: httpx.Response) -> ServiceError:
    """The service's problem+json as a ServiceError; a body that is no problem document gets a plain message."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("title"), str):
        detail = body.get("detail")
        extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "code", "detail", "instance")}
        return ServiceError(service, response.status_code, str(body.get("code") or "error"), body["title"],
                            detail if isinstance(detail, str) else None, extra)
    return ServiceError(service, response.status_code, "upstream_error", f"{SERVICE_NAMES.get(service, service)}出错",
                        f"服务返回 HTTP {response.status_code}，请稍后重试。")


def unavailable(service: str, exc: Exception) -> ServiceError:
    return ServiceError(service, 503, "upstream_unavailable", f"{SERVICE_NAMES.get(service, service)}暂不可用",
                        f"无法连接该服务（{type(exc).__name__}），页面的其他部分不受影响，请稍后重试。")


class Backend:
    """One HTTP client for every service call of the portal (URLs from the settings)."""

    def __init__(self, service_urls: Mapping[str, str], *, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = dict(service_urls)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def _send(self, method: str, service: str, path: str, token: str, *,
                    params: Mapping[str, Any] | None = None, json: Any = None, content: bytes | None = None,
                    media_type: str | None = None) -> httpx.Response:
        """One call as the signed-in person; ServiceError on any refusal or outage (404 included)."""
        base = self.urls.get(service)
        if base is None:
            raise ServiceError(service, 503, "upstream_unknown", f"未配置{SERVICE_NAMES.get(service, service)}",
                               "门户的 SERVICE_URLS 中没有该服务的地址。")
        headers = {"Authorization": f"Bearer {token}", CORRELATION_HEADER: current_correlation_id()}
        if media_type is not None:
            headers["Content-Type"] = media_type
        try:
            response = await self._client.request(
                method, f"{base.rstrip('/')}{path}",
                params={k: v for k, v in (params or {}).items() if v is not None}, json=json, content=content,
                headers=headers)
        except httpx.HTTPError as exc:
            raise unavailable(service, exc) from exc
        if response.status_code >= 400:
            raise error_of(service, response)
        return response

    @staticmethod
    def _json(service: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceError(service, 502, "upstream_error", f"{SERVICE_NAMES.get(service, service)}出错",
                               "服务的回答不是 JSON。") from exc

    async def get(self, service: str, path: str, token: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a service's JSON as the signed-in person."""
        return self._json(service, await self._send("GET", service, path, token, params=params))

    async def post(self, service: str, path: str, token: str, json: Any = None) -> Any:
        """POST (a JSON body) as the signed-in person: the service decides and checks, the portal only relays."""
        return self._json(service, await self._send("POST", service, path, token, json=json if json is not None
                                                    else {}))

    async def put(self, service: str, path: str, token: str, json: Any) -> Any:
        """PUT (a JSON body) as the signed-in person."""
        return self._json(service, await self._send("PUT", service, path, token, json=json))

    async def send_file(self, method: str, service: str, path: str, token: str, content: bytes,
                        media_type: str) -> Any:
        """A file as the whole request body (registry's xlsx import, finance's receipt), its type as the browser
        said; the service checks the bytes."""
        return self._json(service, await self._send(method, service, path, token, content=content,
                                                    media_type=media_type))

    async def download(self, service: str, path: str, token: str) -> httpx.Response:
        """A document (PDF, xlsx, a material) as the service sent it, to pass on to the browser."""
        return await self._send("GET", service, path, token)

    async def get_each(self, services: list[str], path: str, token: str,
                       params: Mapping[str, Any] | None = None) -> dict[str, Any | ServiceError]:
        """The same GET on several services at once; each answer or its ServiceError (one down, the rest shown)."""
        async def one(service: str) -> Any | ServiceError:
            try:
                return await self.get(service, path, token, params)
            except ServiceError as error:
                return error

        answers = await asyncio.gather(*(one(s) for s in services))
        return dict(zip(services, answers, strict=True))

    async def close(self) -> None:
        await self._client.aclose()
