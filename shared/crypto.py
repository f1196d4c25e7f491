"""Personal data at rest (R3.1): AES-256-GCM field encryption, keyed blind index, masking.

Storage pattern for a personal field such as a national id number:

    ctx = "registry.supervisor.id_number"
    id_number_enc = cipher.encrypt(value, context=ctx)
    id_number_hash = cipher.blind_index(value.strip().upper(), context=ctx)

An exact lookup is then `WHERE id_number_hash = :h`; responses show `mask_id_number(value)` unless
the caller is allowed to see the unmasked value (and that read is audited).
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TOKEN_VERSION = "v1"

# Strict ASCII grammar: a token that does not match byte for byte is refused before decryption.
_TOKEN_RE = re.compile(r"v1\.(0|[1-9][0-9]{0,2})\.([A-Za-z0-9_-]+)")


class DecryptionError(Exception):
    """A token is malformed, tampered with, under an unknown key id or from another context."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode_key(value: str, name: str) -> bytes:
    """Decode a urlsafe-base64 key from settings and insist on 32 bytes."""
    text = value.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid urlsafe base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{name} must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _check_key(key: bytes, name: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise ValueError(f"{name} must be {KEY_BYTES} bytes, got {size}")
    return bytes(key)


def _check_key_id(key_id: int) -> int:
    if not isinstance(key_id, int) or not 0 <= key_id <= 255:
        raise ValueError(f"key id must be an int in 0..255, got {key_id!r}")
    return key_id


def _check_context(context: str) -> bytes:
    # NUL is the separator in the blind index input, so it must not occur in a context.
    if not context or "\x00" in context:
        raise ValueError(
            "context must be a non-empty string without NUL, e.g. 'registry.supervisor.id_number'"
        )
    return context.encode("utf-8")


class FieldCipher:
    """Encrypts personal fields with the current key, decrypts with current or retired keys."""

    def __init__(
        self,
        encryption_key: bytes,
        hash_key: bytes,
        *,
        key_id: int = 1,
        old_keys: Mapping[int, bytes] | None = None,
    ) -> None:
        self.key_id = _check_key_id(key_id)
        current = _check_key(encryption_key, "encryption key")
        retired = {
            _check_key_id(kid): _check_key(key, f"old key {kid}") for kid, key in (old_keys or {}).items()
        }
        if retired.get(key_id, current) != current:
            # Two keys under one id would make old tokens undecryptable after the switch.
            raise ValueError(f"key id {key_id} is the current key and a different old key")
        # Retired keys only decrypt; re-encrypting rows with the current key is a background job.
        self._keys = {kid: AESGCM(key) for kid, key in {**retired, key_id: current}.items()}
        # The hash key cannot rotate the same way: every stored blind index would have to be
        # recomputed from the decrypted value, so it is a single key.
        self._hash_key = _check_key(hash_key, "hash key")

    @classmethod
    def from_settings(
        cls,
        encryption_key_b64: str,
        hash_key_b64: str,
        *,
        key_id: int = 1,
        old_keys_b64: Mapping[int, str] | None = None,
    ) -> "FieldCipher":
        """Build from urlsafe-base64 settings values (FIELD_ENCRYPTION_KEY, FIELD_HASH_KEY)."""
        old_keys = {
            kid: _b64decode_key(value, f"old encryption key {kid}")
            for kid, value in (old_keys_b64 or {}).items()
        }
        return cls(
            _b64decode_key(encryption_key_b64, "field encryption key"),
            _b64decode_key(hash_key_b64, "field hash key"),
            key_id=key_id,
            old_keys=old_keys,
        )

    @staticmethod
    def _associated_data(key_id: int, context: bytes) -> bytes:
        # Binding the header and the context means a token copied to another column, or with
        # its key id edited, fails authentication instead of decrypting.
        return f"{TOKEN_VERSION}.{key_id}.".encode("ascii") + context

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt for the column named by `context`; returns 'v1.<kid>.<base64url(nonce+ct)>'."""
        ad = self._associated_data(self.key_id, _check_context(context))
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._keys[self.key_id].encrypt(nonce, plaintext.encode("utf-8"), ad)
        return f"{TOKEN_VERSION}.{self.key_id}.{_b64encode(nonce + ciphertext)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Decrypt a token `encrypt` made for the same context; DecryptionError otherwise."""
        context_bytes = _check_context(context)
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise DecryptionError("malformed token")
        key_id, body = int(match.group(1)), match.group(2)
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(f"unknown key id {key_id}")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("malformed token") from exc
        # The decoder ignores unused trailing bits; re-encoding makes every character significant.
        if _b64encode(raw) != body or len(raw) < NONCE_BYTES + 16:
            raise DecryptionError("malformed token")
        try:
            plaintext = aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._associated_data(key_id, context_bytes)
            )
        except InvalidTag as exc:
            raise DecryptionError("token was tampered with or belongs to another context") from exc
        return plaintext.decode("utf-8")

    def key_id_of(self, token: str) -> int | None:
        """Key id a token was made with (None if malformed), to find rows still on a retired key."""
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        return int(match.group(1)) if match else None

    def blind_index(self, value: str, *, context: str) -> str:
        """Deterministic HMAC-SHA256 hex of `value` for exact lookup in the `context` column.

        The caller normalizes `value` first, identically on write and on lookup (for id numbers
        `value.strip().upper()`, for phones the bare digits); this function hashes it as given.
        """
        message = _check_context(context) + b"\x00" + value.encode("utf-8")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()


def _mask(value: str, keep_head: int, keep_tail: int) -> str:
    """Keep `keep_head` leading and `keep_tail` trailing characters, star the rest (same length)."""
    if len(value) < keep_head + keep_tail + 4:
        # Keeping both ends would reveal (almost) everything: keep at most the last quarter.
        keep_head, keep_tail = 0, len(value) // 4
    hidden = len(value) - keep_head - keep_tail
    return value[:keep_head] + "*" * hidden + value[len(value) - keep_tail :]


def mask_id_number(value: str | None) -> str:
    """'371002199001011234' -> '371002********1234': keep region code and last 4, same length."""
    return _mask((value or "").strip(), 6, 4)


def mask_phone(value: str | None) -> str:
    """'13812345678' -> '138****5678' for mainland mobiles; otherwise keep only the last 4."""
    text = (value or "").strip()
    if re.fullmatch(r"1[0-9]{10}", text):
        return _mask(text, 3, 4)
    return _mask(text, 0, 4)


# Common two-character surnames (复姓), kept whole so '欧阳娜娜' masks to '欧阳**' not '欧***'.
_COMPOUND_SURNAMES = frozenset(
    "欧阳 太史 端木 上官 司马 东方 独孤 南宫 万俟 闻人 夏侯 诸葛 尉迟 公羊 赫连 澹台 "
    "皇甫 宗政 濮阳 公冶 太叔 申屠 公孙 慕容 仲孙 钟离 长孙 宇文 司徒 鲜于 司空 闾丘 "
    "子车 亓官 司寇 巫马 公西 颛孙 壤驷 公良 漆雕 乐正 宰父 谷梁 拓跋 夹谷 轩辕 令狐 "
    "段干 百里 呼延 东郭 南门 羊舌 微生 公户 公玉 公仪 梁丘 公仲 公上 公门 公山 公坚 "
    "左丘 公伯 西门 公祖 第五 公乘 贯丘 公皙 南荣 东里 东宫 仲长 子书 子桑 即墨 达奚 "
    "褚师".split()
)


def mask_name(value: str | None) -> str:
    """'张三' -> '张*', '李小龙' -> '李**', '欧阳娜娜' -> '欧阳**': keep the surname only."""
    text = (value or "").strip()
    if len(text) <= 1:
        return "*" * len(text)
    keep = 2 if len(text) > 2 and text[:2] in _COMPOUND_SURNAMES else 1
    return text[:keep] + "*" * (len(text) - keep)
