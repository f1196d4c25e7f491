"""R3.1 personal data at rest: field encryption, blind index, key rotation and masking."""

import base64
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.crypto import (
    DecryptionError,
    FieldCipher,
    mask_id_number,
    mask_name,
    mask_phone,
)

ID_CTX = "registry.supervisor.id_number"
PHONE_CTX = "registry.supervisor.phone"
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def new_key() -> bytes:
    return secrets.token_bytes(32)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


# One cipher for the whole module: hypothesis reruns tests many times and must not rebuild it.
CIPHER = FieldCipher(new_key(), new_key())


@given(st.text())
def test_r3_1_round_trip_any_text(plaintext: str) -> None:
    token = CIPHER.encrypt(plaintext, context=ID_CTX)
    assert token.isascii()
    assert CIPHER.decrypt(token, context=ID_CTX) == plaintext


def test_r3_1_round_trip_chinese_and_id_number() -> None:
    for value in ["371002199001011234", "37100219900101123X", "张三丰，威海市环翠区", ""]:
        token = CIPHER.encrypt(value, context=ID_CTX)
        assert value not in token or value == ""
        assert CIPHER.decrypt(token, context=ID_CTX) == value


def test_r3_1_token_format() -> None:
    version, kid, body = CIPHER.encrypt("x", context=ID_CTX).split(".")
    assert (version, kid) == ("v1", "1")
    assert set(body) <= set(B64_ALPHABET)


def test_r3_1_nonce_is_random() -> None:
    first = CIPHER.encrypt("371002199001011234", context=ID_CTX)
    second = CIPHER.encrypt("371002199001011234", context=ID_CTX)
    assert first != second
    raw_first = base64.urlsafe_b64decode(first.split(".")[2] + "==")
    raw_second = base64.urlsafe_b64decode(second.split(".")[2] + "==")
    assert raw_first[:12] != raw_second[:12]


def test_r3_1_tampering_any_character_is_refused() -> None:
    token = CIPHER.encrypt("371002199001011234", context=ID_CTX)
    for i, char in enumerate(token):
        for replacement in {"A", "b", "7", "-", "."} - {char}:
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(DecryptionError):
                CIPHER.decrypt(tampered, context=ID_CTX)


def test_r3_1_tampering_any_byte_is_refused() -> None:
    token = CIPHER.encrypt("13812345678", context=PHONE_CTX)
    header, body = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    for i in range(len(raw)):
        flipped = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        tampered = f"{header}.{base64.urlsafe_b64encode(flipped).rstrip(b'=').decode()}"
        with pytest.raises(DecryptionError):
            CIPHER.decrypt(tampered, context=PHONE_CTX)


def test_r3_1_truncated_or_garbage_tokens_are_refused() -> None:
    token = CIPHER.encrypt("13812345678", context=PHONE_CTX)
    bad = [token[:-1], token + "A", token[:20], "", "v1.1.", "v2.1.AAAA", "plain", "v1.01." + "A" * 40]
    for candidate in bad:
        with pytest.raises(DecryptionError):
            CIPHER.decrypt(candidate, context=PHONE_CTX)


def test_r3_1_wrong_context_is_refused() -> None:
    token = CIPHER.encrypt("371002199001011234", context=ID_CTX)
    with pytest.raises(DecryptionError):
        CIPHER.decrypt(token, context=PHONE_CTX)


def test_r3_1_other_key_is_refused() -> None:
    token = CIPHER.encrypt("371002199001011234", context=ID_CTX)
    with pytest.raises(DecryptionError):
        FieldCipher(new_key(), new_key()).decrypt(token, context=ID_CTX)


def test_r3_1_rotated_key_still_decrypts_old_tokens() -> None:
    old_key, new_key_, hash_key = new_key(), new_key(), new_key()
    before = FieldCipher(old_key, hash_key, key_id=1)
    old_token = before.encrypt("37100219900101123X", context=ID_CTX)

    after = FieldCipher(new_key_, hash_key, key_id=2, old_keys={1: old_key})
    new_token = after.encrypt("37100219900101123X", context=ID_CTX)

    assert after.decrypt(old_token, context=ID_CTX) == "37100219900101123X"
    assert after.key_id_of(old_token) == 1
    assert after.key_id_of(new_token) == 2
    assert new_token.startswith("v1.2.")
    # The retired key alone does not know the new key id.
    with pytest.raises(DecryptionError):
        before.decrypt(new_token, context=ID_CTX)


def test_r3_1_key_id_cannot_be_swapped_between_keys() -> None:
    old_key = new_key()
    cipher = FieldCipher(new_key(), new_key(), key_id=2, old_keys={1: old_key})
    token = cipher.encrypt("13812345678", context=PHONE_CTX)
    with pytest.raises(DecryptionError):
        cipher.decrypt(token.replace("v1.2.", "v1.1.", 1), context=PHONE_CTX)


def test_r3_1_blind_index_is_stable_and_scoped() -> None:
    hash_key = new_key()
    one = FieldCipher(new_key(), hash_key)
    two = FieldCipher(new_key(), hash_key)  # Encryption key rotation does not change lookups.
    value = "37100219900101123X"

    digest = one.blind_index(value, context=ID_CTX)
    assert digest == one.blind_index(value, context=ID_CTX) == two.blind_index(value, context=ID_CTX)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != one.blind_index(value, context=PHONE_CTX)
    assert digest != one.blind_index("37100219900101123x", context=ID_CTX)
    assert digest != FieldCipher(new_key(), new_key()).blind_index(value, context=ID_CTX)


def test_r3_1_blind_index_separates_context_from_value() -> None:
    # Without the separator "ab" + "c" and "a" + "bc" would collide.
    assert CIPHER.blind_index("c", context="ab") != CIPHER.blind_index("bc", context="a")


def test_r3_1_from_settings_accepts_urlsafe_base64() -> None:
    enc, mac = new_key(), new_key()
    cipher = FieldCipher.from_settings(b64(enc), b64(mac).rstrip("=") + "\n")
    token = cipher.encrypt("张三", context=ID_CTX)
    assert FieldCipher(enc, mac).decrypt(token, context=ID_CTX) == "张三"
    assert cipher.blind_index("x", context=ID_CTX) == FieldCipher(enc, mac).blind_index("x", context=ID_CTX)


def test_r3_1_from_settings_with_old_keys() -> None:
    old = new_key()
    token = FieldCipher(old, new_key(), key_id=3).encrypt("13812345678", context=PHONE_CTX)
    cipher = FieldCipher.from_settings(b64(new_key()), b64(new_key()), key_id=4, old_keys_b64={3: b64(old)})
    assert cipher.decrypt(token, context=PHONE_CTX) == "13812345678"


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_r3_1_bad_key_lengths_are_rejected(size: int) -> None:
    bad = secrets.token_bytes(size)
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(bad, new_key())
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(new_key(), bad)
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(new_key(), new_key(), key_id=2, old_keys={1: bad})
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher.from_settings(b64(bad), b64(new_key()))
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher.from_settings(b64(new_key()), b64(bad))


def test_r3_1_bad_base64_and_key_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="base64"):
        FieldCipher.from_settings("not base64!", b64(new_key()))
    with pytest.raises(ValueError, match="key id"):
        FieldCipher(new_key(), new_key(), key_id=256)
    with pytest.raises(ValueError, match="key id"):
        FieldCipher(new_key(), new_key(), key_id=1, old_keys={1: new_key()})


def test_r3_1_empty_context_is_rejected() -> None:
    with pytest.raises(ValueError, match="context"):
        CIPHER.encrypt("x", context="")
    with pytest.raises(ValueError, match="context"):
        CIPHER.blind_index("x", context="a\x00b")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("371002199001011234", "371002********1234"),
        ("37100219900101123X", "371002********123X"),
        ("371002900101123", "371002*****1123"),  # 15-digit first-generation id card
        (" 37100219900101123X ", "371002********123X"),
        ("1234567", "******7"),
        ("", ""),
        (None, ""),
        ("1", "*"),
    ],
)
def test_r3_1_mask_id_number(value: str | None, masked: str) -> None:
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("19912345678", "199****5678"),
        ("0631-5212345", "********2345"),
        ("+8613812345678", "**********5678"),
        ("12345", "****5"),
        ("1234", "***4"),
        ("12", "**"),
        ("", ""),
        (None, ""),
    ],
)
def test_r3_1_mask_phone(value: str | None, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("张三", "张*"),
        ("李小龙", "李**"),
        ("欧阳娜娜", "欧阳**"),
        ("欧阳锋", "欧阳*"),
        ("欧阳", "欧*"),  # a bare compound surname is still a whole name: keep one char
        ("张", "*"),
        ("", ""),
        (None, ""),
    ],
)
def test_r3_1_mask_name(value: str | None, masked: str) -> None:
    assert mask_name(value) == masked


@given(st.text(max_size=40))
def test_r3_1_masking_never_raises_and_keeps_length(value: str) -> None:
    text = value.strip()
    for mask in (mask_id_number, mask_phone, mask_name):
        masked = mask(value)
        assert len(masked) == len(text)
        assert all(m in ("*", c) for m, c in zip(masked, text, strict=True))
    # Numbers: short input is mostly hidden and long input loses at least 4 characters.
    for masked in (mask_id_number(value), mask_phone(value)):
        assert masked.count("*") >= min(4, len(text) - len(text) // 4)
    # Names: only the surname (one or two characters) survives.
    assert mask_name(value).count("*") >= max(len(text) - 2, min(len(text), 1))
