"""AES-256 (FIPS-197) on whole 16-byte blocks: the per-person pseudorandom function of draw v3.

`encrypt_blocks(key, data)` encrypts each 16-byte block of `data` on its own (the block cipher
itself, no chaining) and returns the concatenated ciphertext blocks. The service gets it from
`cryptography` (OpenSSL: 20 000 blocks in one call, well under a millisecond); where that package
is missing, as for the stand-alone verifier run with the standard library only, the reference
implementation below gives the same bytes, slowly (~0.1 ms a block). Tests hold the two equal, and
the reference equal to the FIPS-197 appendix C.3 example vector.

The reference is the textbook algorithm, written for reading rather than speed; its S-box is
computed (multiplicative inverse in GF(2^8), then the affine map), not pasted.
"""

from __future__ import annotations

try:  # the service's fast path; the verifier must also work with the standard library alone
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:  # pragma: no cover - exercised by the verifier tests, which run python -S
    Cipher = None

BLOCK = 16
ROUNDS = 14  # AES-256


def _xtime(a: int) -> int:
    """a · x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1."""
    return ((a << 1) ^ 0x11B) if a & 0x80 else a << 1


def _sbox() -> list[int]:
    # powers of the generator 3 give logarithms, so x^-1 = 3^(255 - log x) (0 maps to 0)
    exp, log = [0] * 255, [0] * 256
    a = 1
    for i in range(255):
        exp[i], log[a] = a, i
        a = _xtime(a) ^ a  # a · 3
    box = []
    for x in range(256):
        inverse = exp[(255 - log[x]) % 255] if x else 0
        s = inverse
        for _ in range(4):  # b ^ rotl(b, 1) ^ rotl(b, 2) ^ rotl(b, 3) ^ rotl(b, 4) ^ 0x63
            inverse = ((inverse << 1) | (inverse >> 7)) & 0xFF
            s ^= inverse
        box.append(s ^ 0x63)
    return box


SBOX = _sbox()
MUL2 = [_xtime(a) for a in range(256)]
MUL3 = [_xtime(a) ^ a for a in range(256)]
# state byte p = row + 4 * column; ShiftRows moves row r left by r columns
SHIFT_ROWS = [p % 4 + 4 * ((p // 4 + p % 4) % 4) for p in range(16)]


def expand_key(key: bytes) -> list[list[int]]:
    """The 15 round keys of a 32-byte key (FIPS-197 section 5.2)."""
    if len(key) != 32:
        raise ValueError("AES-256 needs a 32-byte key")
    words = [list(key[4 * i:4 * i + 4]) for i in range(8)]
    rcon = 1
    for i in range(8, 4 * (ROUNDS + 1)):
        temp = list(words[i - 1])
        if i % 8 == 0:
            temp = [SBOX[b] for b in temp[1:] + temp[:1]]
            temp[0] ^= rcon
            rcon = _xtime(rcon)
        elif i % 8 == 4:
            temp = [SBOX[b] for b in temp]
        words.append([a ^ b for a, b in zip(words[i - 8], temp, strict=True)])
    return [[byte for word in words[4 * r:4 * r + 4] for byte in word] for r in range(ROUNDS + 1)]


def _encrypt_block(block: bytes, round_keys: list[list[int]]) -> bytes:
    state = [b ^ k for b, k in zip(block, round_keys[0], strict=True)]
    for r in range(1, ROUNDS + 1):
        state = [SBOX[state[p]] for p in SHIFT_ROWS]  # SubBytes and ShiftRows
        if r < ROUNDS:  # MixColumns, every round but the last
            mixed = []
            for c in range(0, 16, 4):
                a0, a1, a2, a3 = state[c:c + 4]
                mixed += [MUL2[a0] ^ MUL3[a1] ^ a2 ^ a3, a0 ^ MUL2[a1] ^ MUL3[a2] ^ a3,
                          a0 ^ a1 ^ MUL2[a2] ^ MUL3[a3], MUL3[a0] ^ a1 ^ a2 ^ MUL2[a3]]
            state = mixed
        state = [b ^ k for b, k in zip(state, round_keys[r], strict=True)]
    return bytes(state)


def reference_encrypt_blocks(key: bytes, data: bytes) -> bytes:
    """AES-256 of every 16-byte block of data, in pure Python (standard library only)."""
    if len(data) % BLOCK:
        raise ValueError("data must be whole 16-byte blocks")
    round_keys = expand_key(key)
    return b"".join(_encrypt_block(data[i:i + BLOCK], round_keys) for i in range(0, len(data), BLOCK))


def encrypt_blocks(key: bytes, data: bytes) -> bytes:
    """AES-256 of every 16-byte block of data: OpenSSL when `cryptography` is installed, else the reference."""
    if Cipher is None:
        return reference_encrypt_blocks(key, data)
    if len(key) != 32:
        raise ValueError("AES-256 needs a 32-byte key")
    if len(data) % BLOCK:
        raise ValueError("data must be whole 16-byte blocks")
    # ECB is the block cipher applied to each block on its own: exactly the per-person function
    # wanted here (every block is a different person's UUID), not a way of encrypting messages
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()
