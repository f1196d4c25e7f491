"""SMS through Tencent Cloud SMS (API 2021-01-11, action SendSms), signed with TC3-HMAC-SHA256.

The request (https://cloud.tencent.com/document/api/382/55981, signature v3 in /document/api/382/52072):

    POST / HTTP/1.1                   Host: sms.tencentcloudapi.com
    Content-Type: application/json; charset=utf-8
    X-TC-Action: SendSms  X-TC-Version: 2021-01-11  X-TC-Region: ap-guangzhou  X-TC-Timestamp: <unix s>
    Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<UTC date>/sms/tc3_request,
                   SignedHeaders=content-type;host, Signature=<hex>
    {"PhoneNumberSet": ["+8613800000000"], "SmsSdkAppId": "...", "SignName": "...", "TemplateId": "...",
     "TemplateParamSet": ["...", "..."]}

Signature: canonical request = method, URI "/", empty query, the canonical headers content-type and host
(lowercase name:trimmed value, each followed by \\n), the signed header names, hex SHA-256 of the body;
string to sign = "TC3-HMAC-SHA256", timestamp, "<date>/sms/tc3_request", hex SHA-256 of the canonical
request; key = HMAC("TC3"+SecretKey, date) → HMAC(·, "sms") → HMAC(·, "tc3_request"); signature = hex
HMAC(key, string to sign).

An answer is `{"Response": {"SendStatusSet": [{"Code": "Ok", "SerialNo": …}], "RequestId": …}}` or
`{"Response": {"Error": {"Code": …, "Message": …}}}`. Anything but Code "Ok" (a gateway error, an HTTP
error, a timeout, a connection refused) is a `SendFailed`: the delivery is retried with backoff.
"""

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlparse

import httpx

from shared.crypto import mask_phone

log = logging.getLogger(__name__)

SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"


class SendFailed(Exception):
    """The gateway did not take the message (the text says why, without the phone or the message)."""


@dataclass(frozen=True)
class Sent:
    provider: str
    reference: str | None


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_authorization(*, secret_id: str, secret_key: str, host: str, body: bytes, timestamp: int,
                      service: str = SERVICE) -> str:
    """The Authorization header of a TC3-HMAC-SHA256 POST / with a JSON body."""
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_headers = f"content-type:{CONTENT_TYPE}\nhost:{host}\n"
    signed_headers = "content-type;host"
    canonical_request = "\n".join(["POST", "/", "", canonical_headers, signed_headers,
                                   hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{service}/tc3_request"
    string_to_sign = "\n".join([ALGORITHM, str(timestamp), scope,
                                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), day), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"


def e164(phone: str) -> str:
    """A mainland mobile number as +86…; numbers already with a + are kept."""
    digits = phone.strip().replace(" ", "").replace("-", "")
    return digits if digits.startswith("+") else f"+86{digits}"


class TencentSms:
    """Sends one templated SMS per call; one httpx client for the service's life."""

    provider = "tencent"

    def __init__(self, *, endpoint: str, region: str, secret_id: str, secret_key: str, sdk_app_id: str,
                 sign_name: str, timeout: float, clock=None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urlparse(self.endpoint).netloc
        self.region = region
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, *, phone: str, template_id: str, params: list[str]) -> Sent:
        body = json.dumps({
            "PhoneNumberSet": [e164(phone)], "SmsSdkAppId": self.sdk_app_id, "SignName": self.sign_name,
            "TemplateId": template_id, "TemplateParamSet": params,
        }, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": CONTENT_TYPE, "Host": self.host, "X-TC-Action": ACTION, "X-TC-Version": VERSION,
            "X-TC-Region": self.region, "X-TC-Timestamp": str(timestamp),
            "Authorization": tc3_authorization(secret_id=self.secret_id, secret_key=self.secret_key,
                                               host=self.host, body=body, timestamp=timestamp),
        }
        try:
            response = await self.client.post(self.endpoint + "/", content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SendFailed(f"timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise SendFailed(f"unreachable ({type(exc).__name__})") from exc
        try:
            answer = response.json()["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SendFailed(f"HTTP {response.status_code}, not a SendSms answer") from exc
        if "Error" in answer:
            error = answer["Error"]
            raise SendFailed(f"{error.get('Code', '?')}: {str(error.get('Message', ''))[:200]}")
        if response.status_code >= 400:
            raise SendFailed(f"HTTP {response.status_code}")
        statuses = answer.get("SendStatusSet") or []
        if not statuses:
            raise SendFailed("no SendStatusSet in the answer")
        status = statuses[0]
        if status.get("Code") != "Ok":
            raise SendFailed(f"{status.get('Code', '?')}: {str(status.get('Message', ''))[:200]}")
        return Sent(self.provider, status.get("SerialNo"))

    async def close(self) -> None:
        await self.client.aclose()


class LogSms:
    """Development without SMS credentials: the SMS goes to the log (masked phone); the inbox has it too."""

    provider = "log"

    async def send(self, *, phone: str, template_id: str, params: list[str]) -> Sent:
        log.info("SMS (development, not sent) to %s, template %s: %s", mask_phone(phone), template_id or "-",
                 " / ".join(params))
        return Sent(self.provider, None)

    async def close(self) -> None:
        return None
