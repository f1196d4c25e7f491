"""Issue 18: registry's papers of record archived — the selection certificate (R5.1), the four dismissal notices and
the public announcement (R9.1) are stored once when issued (sha256, who, when) and served again byte-identical; a
notice and an announcement carry a 文号 from their own kind's per-year sequence (shared/documents/archive.py)."""

import hashlib
import re
from datetime import date, datetime
from urllib.parse import unquote

from sqlalchemy import select

from services.registry import papers
from services.registry.models import documents
from shared import clock
from tests.support import pdf as read
from tests.support.apps import bearer
from tests.support.registry_helpers import ADMIN, appointed, trained

AUDITOR = bearer("auditor", subject="auditor-9")
ISSUED_AT = datetime(2027, 6, 15, 9, 30, tzinfo=clock.SHANGHAI)
LATER = datetime(2027, 6, 20, 14, 0, tzinfo=clock.SHANGHAI)
KINDS = ("person", "employer", "recommending_body", "procuratorate")


async def _stored(app, kind: str, subject: str) -> list:
    async with app.state.db.transaction() as session:
        return (await session.execute(select(documents.document).where(
            documents.document.c.kind == kind, documents.document.c.subject == subject))).all()


async def _last(app, kind: str, year: int) -> int | None:
    async with app.state.db.transaction() as session:
        return await session.scalar(select(documents.number.c.last).where(
            documents.number.c.kind == kind, documents.number.c.year == year))


def _sequence(number: str, code: str, year: int) -> int:
    found = re.fullmatch(rf"{code}〔{year}〕(\d+)号", number)
    assert found, number
    return int(found.group(1))


def _number_in(response, code: str, year: int) -> str:
    """The 文号 in the PDF's text (pypdf) and in its X-Document-Number header: the same one."""
    assert response.status_code == 200, response.text
    found = re.findall(rf"{code}〔{year}〕\d+号", read.text(response.content))
    assert len(found) == 1, found
    assert unquote(response.headers["x-document-number"]) == found[0]
    assert response.headers["x-document-sha256"] == hashlib.sha256(response.content).hexdigest()
    return found[0]


async def test_r5_1_certificate_archived_once_byte_identical_with_who_and_when(app, client):
    with clock.frozen(ISSUED_AT):
        sup = await appointed(client, decision_date=date(2027, 6, 1))
        [term] = (await client.get(f"/supervisors/{sup['id']}/appointments", headers=ADMIN)).json()
        url = f"/supervisors/{sup['id']}/appointments/{term['id']}/certificate.pdf"
        first = await client.get(url, headers=ADMIN)
    with clock.frozen(LATER):
        again = await client.get(url, headers=AUDITOR)  # another reader, days later: the stored paper
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and term["certificate_no"] in read.text(first.content)
    assert "x-document-number" not in first.headers  # numbered by its certificate no., no 文号
    [row] = await _stored(app, papers.CERTIFICATE_KIND, term["id"])
    assert (row.issued_by, row.issued_at, row.number) == ("admin-1", ISSUED_AT, None)
    assert row.sha256 == hashlib.sha256(first.content).hexdigest() == first.headers["x-document-sha256"]
    assert row.content == first.content and row.size == len(first.content)
    assert datetime.fromisoformat(again.headers["x-document-issued-at"]) == ISSUED_AT


async def _dismissed(client, name: str, **extra) -> dict:
    sup = await trained(client, name=name, **extra)
    done = await client.post(f"/supervisors/{sup['id']}/dismissals", headers=ADMIN,
                             json={"ground": 6, "evidence_note": "受到刑事处罚"})
    assert done.status_code == 201, done.text
    return done.json()


async def test_r9_1_the_decision_numbers_the_notices_and_announcement_reads_print_and_archive_them(app, client):
    """The decision issues the papers: each notice and the announcement have their 文号 in the decision's answer
    (consecutive in their kind's sequence of the year) before anyone prints them; each PDF carries that number, is
    archived on first read (who, when) and served again byte-identical; reading numbers nothing."""
    year = ISSUED_AT.year
    with clock.frozen(ISSUED_AT):
        case = await _dismissed(client, "王存档", employer="威海某厂", recommending_body="文登区某社区")
        numbers = {n["recipient_kind"]: n["number"] for n in case["notices"]}
        announced = case["announcement_number"]
        sequences = [_sequence(numbers[kind], "威司免", year) for kind in KINDS]
        assert sequences == list(range(sequences[0], sequences[0] + 4))
        counters = (await _last(app, papers.NOTICE_KIND, year), await _last(app, papers.ANNOUNCEMENT_KIND, year))
        assert counters == (sequences[-1], _sequence(announced, "威司公告", year))
        assert (await client.get(f"/dismissals/{case['id']}", headers=ADMIN)).json()["announcement_number"] == announced
        for kind in KINDS:
            printed = await client.get(f"/dismissals/{case['id']}/notices/{kind}.pdf", headers=ADMIN)
            assert _number_in(printed, "威司免", year) == numbers[kind]
        announcement = await client.get(f"/dismissals/{case['id']}/announcement.pdf", headers=ADMIN)
        assert _number_in(announcement, "威司公告", year) == announced
    with clock.frozen(LATER):  # asked again, by another reader: the same bytes, the same number, nothing new issued
        for kind in KINDS:
            again = await client.get(f"/dismissals/{case['id']}/notices/{kind}.pdf", headers=AUDITOR)
            assert _number_in(again, "威司免", year) == numbers[kind]
            [row] = await _stored(app, papers.NOTICE_KIND, f"{case['id']}:{kind}")
            assert again.content == row.content and (row.issued_by, row.issued_at) == ("admin-1", ISSUED_AT)
            assert row.number == numbers[kind] and row.sha256 == hashlib.sha256(row.content).hexdigest()
        again = await client.get(f"/dismissals/{case['id']}/announcement.pdf", headers=AUDITOR)
    assert again.content == announcement.content
    [row] = await _stored(app, papers.ANNOUNCEMENT_KIND, case["id"])
    assert (row.issued_by, row.issued_at, row.number) == ("admin-1", ISSUED_AT, announced)
    assert (await _last(app, papers.NOTICE_KIND, year), await _last(app, papers.ANNOUNCEMENT_KIND, year)) == counters


async def test_r9_1_the_announcement_has_its_own_sequence_apart_from_the_notices(app, client):
    """A second kind gets its own per-year sequence: each decision takes four notice numbers and one announcement
    number, the two sequences side by side; a new year starts both at 1."""
    year = ISSUED_AT.year
    with clock.frozen(ISSUED_AT):
        first, second = await _dismissed(client, "李公告"), await _dismissed(client, "赵公告")
    announced = [_sequence(c["announcement_number"], "威司公告", year) for c in (first, second)]
    notices = [_sequence(n["number"], "威司免", year) for c in (first, second) for n in c["notices"]]
    assert announced[1] == announced[0] + 1 and notices == list(range(notices[0], notices[0] + 8))
    assert await _last(app, papers.ANNOUNCEMENT_KIND, year) == announced[1]
    assert await _last(app, papers.NOTICE_KIND, year) == notices[-1]
    with clock.frozen(datetime(2028, 1, 3, 9, 0, tzinfo=clock.SHANGHAI)):
        case = await _dismissed(client, "钱新年")
        assert case["announcement_number"] == "威司公告〔2028〕1号"
        assert [n["number"] for n in case["notices"]] == [f"威司免〔2028〕{i}号" for i in range(1, 5)]
        assert _number_in(await client.get(f"/dismissals/{case['id']}/announcement.pdf", headers=ADMIN),
                          "威司公告", 2028) == "威司公告〔2028〕1号"
        assert _number_in(await client.get(f"/dismissals/{case['id']}/notices/employer.pdf", headers=ADMIN),
                          "威司免", 2028) == "威司免〔2028〕2号"
