"""Authentic events: every message on the bus is signed by the service that produced it.

Two lines of defence against a forged event (anyone who can reach the broker could otherwise
publish a `FeedbackSigned` and create a subsidy line):

1. the broker: TLS, SASL (SCRAM) and per-service topic ACLs (only casework may write
   `casework.feedback`, ...), set up in deploy/;
2. here: the outbox relay signs every message with its service's Ed25519 key, and every consumer
   verifies the signature before it reads anything else. A message that reached a topic anyway
   (a leaked broker credential, a wrong ACL, a test tool) is dead-lettered and changes nothing.

Wire format: besides `type`, `version` and `correlation_id` the relay sends the Kafka headers

    source  the producing service, = the envelope's `source`; selects the verify key
    seq     the producer's outbox row id, decimal: per producer, increasing in publishing order
    sig     base64 of the Ed25519 signature over SIGNED_PREFIX + topic + "\\n" + seq + "\\n" + value

where value is the exact message bytes. Binding the topic means a signed message copied onto
another topic does not verify there, so "who may publish on this topic" (the AsyncAPI
publishers, `shared.events.asyncapi.publishers`) cannot be sidestepped by a replay.

Batches: one Ed25519 signature costs ~50 us and a verification ~135 us here, about as much as
the rest of the pipeline's CPU per event. So the relay signs the messages of one publishing batch
together, in groups of up to BATCH_GROUP: a Merkle tree (RFC 6962 domain separation: leaves
SHA-256(0x00 || signed bytes as above), nodes SHA-256(0x01 || left || right), an odd node moves up
as it is) whose root is signed (`sig` over BATCH_PREFIX + root); each message carries its own path
to the root in the header `sig.path` (33 bytes a level: 0x00 = the sibling is on the left, 0x01 =
on the right, then the sibling's hash). Every message still verifies on its own; a consumer
verifies a root's signature once and remembers it (`EventVerifier`, an LRU of verified roots), so
a group of 32 costs one verification. A message without `sig.path` is signed alone, over exactly
the bytes above (a batch of one, and the event feed's messages).

Keys (settings): `EVENT_SIGNING_KEY` = base64 of the service's raw 32-byte private key (a secret,
no default); `EVENT_VERIFY_KEYS` = JSON {"registry": "<base64 raw 32-byte public key>", ...} of
every producer, the service itself included (everyone publishes `platform.calendar`). No key, no
publishing (the relay keeps the rows); no verify key for a source, every message of it is
dead-lettered. `python -m shared.events.signing` prints a new key pair.
"""

import base64
import binascii
import hashlib
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNED_PREFIX = b"people-supervisors/event/1\n"
BATCH_PREFIX = b"people-supervisors/event-batch/1\n"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_SEQ = 2**63 - 1
BATCH_GROUP = 32  # messages under one signature (a path of at most 5 levels, 165 bytes)
MAX_PATH_LEVELS = 16
HEADER_SOURCE, HEADER_SEQ, HEADER_SIG, HEADER_PATH = "source", "seq", "sig", "sig.path"
_OWN_HEADERS = frozenset({HEADER_SOURCE, HEADER_SEQ, HEADER_SIG, HEADER_PATH})
VERIFIED_ROOTS = 4096  # roots whose signature a verifier remembers


class SignatureError(ValueError):
    """A message that is not provably from a producer allowed on its topic."""


def decode_key(value: str, name: str) -> bytes:
    """32 raw key bytes from base64 (standard or urlsafe alphabet, padding optional)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{name} must decode to {KEY_BYTES} bytes (a raw Ed25519 key), got {len(raw)}")
    return raw


def _raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate_keypair() -> tuple[str, str]:
    """(private, public) key, each base64 of the raw 32 bytes: the settings' format."""
    private = Ed25519PrivateKey.generate()
    return base64.b64encode(_raw(private)).decode(), base64.b64encode(_raw(private.public_key())).decode()


def public_key_of(private_b64: str) -> str:
    """The base64 public key of a base64 private key."""
    private = Ed25519PrivateKey.from_private_bytes(decode_key(private_b64, "private key"))
    return base64.b64encode(_raw(private.public_key())).decode()


def signed_bytes(topic: str, seq: int | str | bytes, value: bytes) -> bytes:
    """What the signature covers: the domain prefix, the topic, the sequence and the message value."""
    seq_bytes = seq if isinstance(seq, bytes) else str(seq).encode()
    return b"".join((SIGNED_PREFIX, topic.encode(), b"\n", seq_bytes, b"\n", value))


def _leaf(message: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + message).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """(root, path of each leaf): the tree of `leaves` (an odd node moves up unchanged)."""
    paths = [bytearray() for _ in leaves]
    level = list(leaves)
    members = [[i] for i in range(len(leaves))]  # which leaves lie under each node of the level
    while len(level) > 1:
        up, up_members = [], []
        for j in range(0, len(level) - 1, 2):
            left, right = level[j], level[j + 1]
            for i in members[j]:
                paths[i] += b"\x01" + right  # the sibling is on the right
            for i in members[j + 1]:
                paths[i] += b"\x00" + left
            up.append(_node(left, right))
            up_members.append(members[j] + members[j + 1])
        if len(level) % 2:
            up.append(level[-1])
            up_members.append(members[-1])
        level, members = up, up_members
    return level[0], [bytes(p) for p in paths]


def root_of(leaf: bytes, path: bytes) -> bytes:
    """The root a leaf's path leads to; SignatureError if the path is malformed."""
    if len(path) % 33 or not 0 < len(path) // 33 <= MAX_PATH_LEVELS:
        raise SignatureError("sig.path header is not a Merkle path")
    node = leaf
    for k in range(0, len(path), 33):
        side, sibling = path[k], path[k + 1:k + 33]
        if side == 0:
            node = _node(sibling, node)
        elif side == 1:
            node = _node(node, sibling)
        else:
            raise SignatureError("sig.path header is not a Merkle path")
    return node


class EventSigner:
    """Signs the messages of one service (the outbox relay's, and the event feed's)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._sign = private_key.sign
        self.public_key = base64.b64encode(_raw(private_key.public_key())).decode()

    @classmethod
    def from_b64(cls, private_b64: str) -> "EventSigner":
        return cls(Ed25519PrivateKey.from_private_bytes(decode_key(private_b64, "EVENT_SIGNING_KEY")))

    @classmethod
    def from_settings(cls, settings: Any) -> "EventSigner | None":
        """The service's signer; None when EVENT_SIGNING_KEY is not set (then nothing is published)."""
        key = getattr(settings, "event_signing_key", None)
        return cls.from_b64(key.get_secret_value()) if key is not None else None

    def headers(self, *, source: str, topic: str, seq: int, value: bytes) -> list[tuple[str, bytes]]:
        """The `source`, `seq` and `sig` headers of one message signed alone."""
        seq_bytes = str(seq).encode()
        signature = self._sign(signed_bytes(topic, seq_bytes, value))
        return [(HEADER_SOURCE, source.encode()), (HEADER_SEQ, seq_bytes),
                (HEADER_SIG, base64.b64encode(signature))]

    def sign_many(self, messages: Sequence[tuple[str, str, int, bytes]]) -> list[list[tuple[str, bytes]]]:
        """The signature headers of each (source, topic, seq, value), one signature per group of up to
        BATCH_GROUP (see the module docstring); a group of one is signed alone."""
        signed: list[list[tuple[str, bytes]]] = []
        for start in range(0, len(messages), BATCH_GROUP):
            group = messages[start:start + BATCH_GROUP]
            if len(group) == 1:
                source, topic, seq, value = group[0]
                signed.append(self.headers(source=source, topic=topic, seq=seq, value=value))
                continue
            seqs = [str(seq).encode() for _, _, seq, _ in group]
            root, paths = merkle_paths([_leaf(signed_bytes(topic, seq_bytes, value))
                                        for (_, topic, _, value), seq_bytes in zip(group, seqs, strict=True)])
            signature = base64.b64encode(self._sign(BATCH_PREFIX + root))
            signed += [[(HEADER_SOURCE, source.encode()), (HEADER_SEQ, seq_bytes), (HEADER_SIG, signature),
                        (HEADER_PATH, path)]
                       for (source, _, _, _), seq_bytes, path in zip(group, seqs, paths, strict=True)]
        return signed


@dataclass(frozen=True)
class Verified:
    """Who signed a message, and its place in that producer's sequence."""

    source: str
    seq: int


def _default_publishers(topic: str) -> Sequence[str]:
    from shared.events.asyncapi import publishers  # the contract's publishers of each topic

    return publishers(topic)


class EventVerifier:
    """Checks that a message was signed by a producer that may publish on its topic."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey],
                 publishers: Callable[[str], Iterable[str]] = _default_publishers) -> None:
        self._keys = dict(keys)
        self._publishers = publishers
        self._allowed: dict[str, frozenset[str]] = {}
        self._roots: OrderedDict[tuple[str, bytes, bytes], None] = OrderedDict()  # verified batch roots

    @classmethod
    def from_keys(cls, keys_b64: Mapping[str, str], **kwargs: Any) -> "EventVerifier":
        return cls({source: Ed25519PublicKey.from_public_bytes(decode_key(key, f"verify key of {source}"))
                    for source, key in keys_b64.items()}, **kwargs)

    @classmethod
    def from_settings(cls, settings: Any) -> "EventVerifier":
        """From EVENT_VERIFY_KEYS; with none configured every message is refused."""
        return cls.from_keys(getattr(settings, "event_verify_keys", None) or {})

    def allowed(self, topic: str) -> frozenset[str]:
        allowed = self._allowed.get(topic)
        if allowed is None:
            allowed = self._allowed[topic] = frozenset(self._publishers(topic))
        return allowed

    def verify(self, topic: str, headers: Iterable[tuple[str, bytes]] | None, value: bytes | None) -> Verified:
        """The signer and sequence of a message; SignatureError if it is not authentic."""
        found: dict[str, bytes] = {}
        for name, data in headers or ():
            if name in _OWN_HEADERS:
                if name in found:
                    raise SignatureError(f"header {name!r} appears twice")
                found[name] = data
        sig = found.get(HEADER_SIG)
        if sig is None:
            raise SignatureError("unsigned message (no sig header)")
        try:
            source = found[HEADER_SOURCE].decode("ascii")
            seq_bytes = found[HEADER_SEQ]
        except KeyError as exc:
            raise SignatureError(f"signed message without the {exc.args[0]!r} header") from None
        except UnicodeDecodeError:
            raise SignatureError("source header is not ASCII") from None
        key = self._keys.get(source)
        if key is None:
            raise SignatureError(f"unknown source {source[:64]!r} (no verify key)")
        if source not in self.allowed(topic):
            raise SignatureError(f"source {source!r} may not publish on {topic}")
        if not (seq_bytes.isdigit() and len(seq_bytes) <= 19 and (seq_bytes == b"0" or seq_bytes[:1] != b"0")):
            raise SignatureError("seq header is not a decimal sequence number")
        seq = int(seq_bytes)
        if seq > MAX_SEQ:
            raise SignatureError("seq header out of range")
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("sig header is not base64") from None
        if len(signature) != SIGNATURE_BYTES:
            raise SignatureError("sig header is not an Ed25519 signature")
        message = signed_bytes(topic, seq_bytes, value or b"")
        path = found.get(HEADER_PATH)
        try:
            if path is None:  # signed alone
                key.verify(signature, message)
            else:  # one of a batch: its path to the signed root, the root's signature checked once
                root = root_of(_leaf(message), path)
                known = (source, root, signature)
                if known in self._roots:
                    self._roots.move_to_end(known)
                else:
                    key.verify(signature, BATCH_PREFIX + root)
                    self._roots[known] = None
                    if len(self._roots) > VERIFIED_ROOTS:
                        self._roots.popitem(last=False)
        except InvalidSignature:
            raise SignatureError(f"bad signature for source {source!r}") from None
        return Verified(source, seq)


def main(argv: list[str]) -> int:
    """Print a new key pair: EVENT_SIGNING_KEY for the service, its public key for EVENT_VERIFY_KEYS."""
    private, public = generate_keypair()
    name = argv[0] if argv else "<service>"
    print(f"EVENT_SIGNING_KEY={private}")
    print(f"public key (in every service's EVENT_VERIFY_KEYS): {json.dumps({name: public})}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
