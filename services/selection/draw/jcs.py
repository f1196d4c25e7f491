"""RFC 8785 (JCS) canonical JSON as UTF-8 bytes, standard library only (the stand-alone verifier runs it).

Values are dict (str keys), list (or tuple), str, int, bool and None. Receipts hold no floating-point
numbers (DRAW.md "Canonical JSON"), so a float is refused (TypeError) rather than serialised the
ECMAScript way; an int must be an I-JSON safe integer, |x| <= 2**53 - 1 (RFC 8785 §3.2.2.3, RFC 7493
§2.2), else ValueError. Object keys are sorted by their UTF-16 code units (§3.2.3); strings escape only
`"`, `\\` and U+0000..U+001F, with \\b \\f \\n \\r \\t short forms and lowercase \\u00xx otherwise
(§3.2.2.2); a lone surrogate is refused (ValueError); no whitespace.
"""

from __future__ import annotations

MAX_SAFE_INTEGER = 2**53 - 1

_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\b"): "\\b", ord("\f"): "\\f", ord("\n"): "\\n",
                 ord("\r"): "\\r", ord("\t"): "\\t"})


def canonical(obj: object) -> bytes:
    """The RFC 8785 canonical JSON of obj as UTF-8; TypeError for floats and non-JSON types, ValueError else."""
    out: list[str] = []
    _write(obj, out)
    return "".join(out).encode("utf-8")


def _write(obj: object, out: list[str]) -> None:
    """Append the canonical text of obj to out."""
    if obj is None:
        out.append("null")
    elif obj is True or obj is False:
        out.append("true" if obj else "false")
    elif isinstance(obj, str):
        out.append(_string(obj))
    elif isinstance(obj, int):
        value = int(obj)  # an IntEnum's number, not its name
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the I-JSON safe range ±(2**53 - 1) (RFC 8785 §3.2.2.3)")
        out.append(str(value))
    elif isinstance(obj, float):
        raise TypeError(f"float {obj!r} refused: canonical receipts hold no floating-point numbers")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"object key {key!r} is a {type(key).__name__}, not a str")
        out.append("{")
        for i, key in enumerate(sorted(obj, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(obj[key], out)
        out.append("}")
    else:
        raise TypeError(f"{type(obj).__name__} is not a JSON value (dict, list, str, int, bool, None)")


def _utf16_key(key: str) -> bytes:
    """Sort key: big-endian UTF-16 bytes order exactly as the UTF-16 code units do (RFC 8785 §3.2.3)."""
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise ValueError(f"object key {key!r} holds a lone surrogate, which is not valid Unicode") from exc


def _string(s: str) -> str:
    """The JSON string literal of s per RFC 8785 §3.2.2.2; ValueError for a lone surrogate."""
    text = str.translate(s, _ESCAPES)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"string {s!r} holds a lone surrogate, which is not valid Unicode") from exc
    return f'"{text}"'
