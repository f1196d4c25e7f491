"""The appraisal's papers of record as PDF (issue 18): result notices and the commendation (R38.1, R39.1), the
告知书 (R35.1), the public notice (R34.1(5)) in the GB/T 9704 layout with a 文号 威司〔年〕n号 per kind; the
ledger of a person and of a district (R28.1). Each issued notice is archived once and served again byte-identical.
"""

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.appraisal import ledger
from services.appraisal.models import documents
from shared.documents import archive, official, tables
from shared.documents.words import document_date, document_number

NUMBER_CODE = "威司"  # the bureau's 发文机关代字: 威司〔2026〕12号


def jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """A document's data as stored (JSON): dates as ISO strings."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in doc.items()}


def official_data(doc: dict[str, Any], *, authority: str) -> dict[str, Any]:
    """R35.1/R38.1/R39.1/R34.1(5): a notice's data (title, addressee, paragraphs, issuer, date) in the official
    layout, issued by `authority`."""
    return official.notice(authority=authority, title=doc["title"], paragraphs=list(doc["paragraphs"]),
                           issuer=doc["issuer"], on=date.fromisoformat(str(doc["date"])),
                           addressee=doc.get("addressee"))


async def issue_notice(session: AsyncSession, *, kind: str, subject: str, doc: dict[str, Any], authority: str,
                       actor: str, number: str | None = None) -> archive.Issued:
    """The notice's PDF of record: with the 文号 the act that issued it gave it (`number`), else the next of its
    kind and year at this first print (the papers issued before 0007 and 0008)."""
    data = official_data(doc, authority=authority)
    return await archive.issue(session, documents, kind=kind, subject=subject, data=data, render=official.render,
                               actor=actor, number=number,
                               numbered=None if number else (NUMBER_CODE, date.fromisoformat(data["on"]).year))


async def take_number(session: AsyncSession, kind: str, on: date) -> str:
    """The next 文号 of a kind of paper in the year of `on` (威司〔2025〕7号), taken by the act that issues it."""
    return document_number(NUMBER_CODE, on.year, await archive.next_sequence(session, documents, kind, on.year))


def _flag(value: Any) -> Any:
    return ("是" if value else "否") if isinstance(value, bool) else value


def person_ledger_document(*, person: dict, year: int, figures: ledger.Figures, rows: Sequence) -> dict:
    """R28.1: one person's ledger of a year: the figures, then every entry, in Chinese (no internal ids)."""
    entries = []
    for r in rows:
        entries.append([document_date(r.occurred_on), ledger.KIND_ZH.get(r.kind, r.kind),
                        ledger.subkind_label(r.kind, r.subkind),
                        "" if r.adopted is None else ("采纳" if r.adopted else "未采纳"), r.hours or "",
                        "" if r.attended is None else ("是" if r.attended else "否"),
                        f"第（{r.ground}）项" if r.ground else "", (r.details or {}).get("text", "")])
    figures_rows = [[label, _flag(getattr(figures, key))] for key, label in ledger.FIGURE_ZH.items()]
    return tables.table_document(
        title=f"人民监督员履职工作台账（{year}年度）",
        lines=[f"姓名：{person.get('name') or '（未登记姓名）'}", f"区市：{person.get('district') or ''}",
               f"工作单位：{person.get('employer') or ''}"],
        sections=[tables.section(["项目", "数量"], figures_rows, heading="一、履职情况汇总", widths=[70, 40]),
                  tables.section(["日期", "类别", "细类", "意见是否采纳", "学时", "是否参加", "第三十二条情形", "说明"],
                                 entries, heading="二、台账明细", widths=[26, 26, 32, 16, 10, 12, 18, 0],
                                 empty="（本年度无台账记录）")])


def district_ledger_document(*, year: int, district: str | None, rows: list[list[Any]]) -> dict:
    """R28.1: everyone of a year (one district or all) with their figures, one row each."""
    headers = ["序号", "姓名", "区市", "工作单位", *ledger.FIGURE_ZH.values()]
    return tables.table_document(
        title=f"人民监督员履职工作台账汇总（{year}年度）", lines=[f"范围：{district or '全市'}", f"人数：{len(rows)}"],
        sections=[tables.section(headers, rows, widths=[10, 16, 14, 0] + [16] * len(ledger.FIGURE_ZH))],
        landscape=True)


async def district_rows(session: AsyncSession, year: int, *, district: str | None) -> list[list[Any]]:
    rows, n = [], 0
    async for row in ledger.stream_summary(session, year, district=district, batch=1000):
        n += 1
        f = ledger.to_figures(row)
        rows.append([n, row.name or "（未登记姓名）", row.district or "", row.employer or "",
                     *[_flag(getattr(f, k)) for k in ledger.FIGURE_ZH]])
    return rows
