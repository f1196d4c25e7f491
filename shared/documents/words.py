"""Money and dates in the words of a document of record (pure functions)."""

from datetime import date, datetime

DIGITS = "零壹贰叁肆伍陆柒捌玖"
GROUP_UNITS = ("", "万", "亿", "万亿")


def _group(n: int) -> str:
    """0 < n < 10000 in capital numerals: 1010 → 壹仟零壹拾 (one 零 for a run of zeros, none at the end)."""
    out, zero = "", False
    for size, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
        digit = n // size % 10
        if digit:
            out += ("零" if zero and out else "") + DIGITS[digit] + unit
            zero = False
        else:
            zero = True
    return out


def _integer(n: int) -> str:
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    if len(groups) > len(GROUP_UNITS):
        raise ValueError("金额过大")
    out, gap = "", False
    for index in reversed(range(len(groups))):
        value = groups[index]
        if value == 0:
            gap = bool(out)
            continue
        if out and (gap or value < 1000):
            out += "零"
        out += _group(value) + GROUP_UNITS[index]
        gap = False
    return out


def amount_in_words(fen: int) -> str:
    """Integer fen in capital numerals (大写), as on a payment table: 1944404 → 壹万玖仟肆佰肆拾肆元零肆分,
    1000 → 壹拾元整 (整 when there are no fen), 0 → 零元整, 5 → 伍分, -150 → 负壹元伍角整."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amounts are integer fen")
    sign = "负" if fen < 0 else ""
    fen = abs(fen)
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    out = _integer(yuan)
    if out:
        out += "元"
    if jiao:
        out += DIGITS[jiao] + "角"
    elif cents and out:
        out += "零"
    if cents:
        out += DIGITS[cents] + "分"
    else:
        out = (out or "零元") + "整"
    return sign + out


def yuan(fen: int) -> str:
    """12345 -> '123.45', -5 -> '-0.05': fen formatted as yuan with 2 decimals, no float involved."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amounts are integer fen")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def document_date(day: date | datetime) -> str:
    """GB/T 9704-2012 §7.3.5: the date of a document in Arabic numerals, year, month and day in full, no leading
    zeros: 2026年11月30日."""
    if isinstance(day, datetime):
        day = day.date()
    return f"{day.year}年{day.month}月{day.day}日"


def moment(value: datetime) -> str:
    """A moment (already in the local zone) as a form prints it: 2026年11月30日 09:05."""
    return f"{document_date(value)} {value:%H:%M}"


def document_number(code: str, year: int, sequence: int) -> str:
    """GB/T 9704-2012 §7.2.4: 发文字号 = authority code + year in 六角括号 + sequence (no leading zeros):
    威司〔2026〕12号."""
    if sequence < 1:
        raise ValueError("文号序号从 1 开始")
    return f"{code}〔{year}〕{sequence}号"
