"""A local stand-in for Tencent Cloud SMS (SendSms, API 2021-01-11) on a real port: it checks each request's
TC3-HMAC-SHA256 signature by its own reading of the documented algorithm (not the adapter's code), and can
answer OK, a gateway error, an HTTP 500, or not at all in time (a timeout)."""

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SECRET_ID = "AKIDstandin0000000000000000000000"
SECRET_KEY = "standin-secret-key-0123456789abcdef"
AUTHORIZATION = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/sms/tc3_request, "
                           r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$")


def expected_signature(*, secret_key: str, day: str, timestamp: str, signed: str, headers, body: bytes) -> str:
    """Tencent's signature v3 (cloud.tencent.com/document/api/382/52072), computed here from what arrived."""
    names = signed.split(";")
    # "头部 key 和 value 统一转成小写，并去掉首尾空格": names and values lowercased and trimmed
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in names)
    canonical = f"POST\n/\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{day}/sms/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("TC3" + secret_key).encode()
    for part in (day, "sms", "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class SmsStandIn:
    mode: str = "ok"  # ok | error | http500 | timeout
    hang_seconds: float = 5.0
    received: list[dict] = field(default_factory=list)  # every request whose signature verified
    refused: list[str] = field(default_factory=list)  # why requests were refused (bad signature, …)

    def __post_init__(self) -> None:
        self.port = _free_port()
        self.app = FastAPI()
        self.app.post("/")(self.send_sms)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def send_sms(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        match = AUTHORIZATION.match(headers.get("authorization", ""))
        problem = None
        if match is None:
            problem = "no TC3 Authorization header"
        elif match["id"] != SECRET_ID:
            problem = "unknown SecretId"
        elif headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11":
            problem = "wrong action or version"
        elif abs(int(headers.get("x-tc-timestamp", "0")) - time.time()) > 300:
            problem = "timestamp too far from the server's clock"
        elif datetime.fromtimestamp(int(headers["x-tc-timestamp"]), UTC).strftime("%Y-%m-%d") != match["day"]:
            problem = "credential date is not the timestamp's UTC date"
        elif not {"content-type", "host"} <= set(match["signed"].split(";")):
            problem = "content-type and host must be signed"
        elif not hmac.compare_digest(match["sig"], expected_signature(
                secret_key=SECRET_KEY, day=match["day"], timestamp=headers["x-tc-timestamp"],
                signed=match["signed"], headers=headers, body=body)):
            problem = "signature mismatch"
        if problem is not None:
            self.refused.append(problem)
            return JSONResponse({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": problem},
                                              "RequestId": "standin"}})
        payload = json.loads(body)
        self.received.append(payload)
        if self.mode == "timeout":
            await asyncio.sleep(self.hang_seconds)
        if self.mode == "http500":
            return JSONResponse({"message": "internal error"}, status_code=500)
        if self.mode == "error":
            return JSONResponse({"Response": {"Error": {"Code": "LimitExceeded.PhoneNumberDailyLimit",
                                                        "Message": "单个手机号日下发条数超过设定的上限"},
                                              "RequestId": "standin"}})
        return JSONResponse({"Response": {"SendStatusSet": [
            {"SerialNo": f"standin-{len(self.received)}", "PhoneNumber": payload["PhoneNumberSet"][0],
             "Fee": 1, "Code": "Ok", "Message": "send success"}], "RequestId": "standin"}})

    async def __aenter__(self) -> "SmsStandIn":
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 (uvicorn sets a flag, not an event)
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, 10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
