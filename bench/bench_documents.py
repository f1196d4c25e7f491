"""Documents of record (issue 18): the monthly table of 10 000 lines as xlsx and as PDF, and one feedback form.

- xlsx:     `disbursement.to_xlsx(table, details)` — the official layout (borders, merged title, print setup,
            大写 total, the 履职明细 sheet) for N table rows and N activity lines, in memory.
  baseline: openpyxl alone: the same values (both sheets) appended to a write-only workbook and saved.
            Target: ≤ 2× baseline (#18). (bench_finance measures the endpoint's path from PostgreSQL.)
- PDF:      `disbursement.to_pdf(table)` — typst, landscape A4, header row repeated on every page, N rows; the
            rows whose wrapping is certain are given their height (`disbursement.layout`, `shared/documents/fit.py`).
            Target: ≤ 5 s (#18). The same rows' xlsx (baseline above) is given for scale.
  baseline: the same template with every row `auto` (typst measures each row: the table before fit.py), other
            data of the same shape (a repeat would hit typst's layout cache).
- feedback form: `casework.pdf.render` of a typical form (3 supervisors, opinions of 300 characters, signatures,
            an annex). Target: ≤ 200 ms (#18).

typst memoizes layout inside a process, so every run renders different data (names and amounts change with the
run) — otherwise a repeat would measure the cache. Wall time: median of R runs; the first render of the process
(font loading) is a separate row.
"""

import argparse
import io
import statistics
import time
import uuid
from datetime import date, datetime

from openpyxl import Workbook

from bench import ratio
from services.casework import pdf as form_pdf
from services.finance import disbursement as d
from shared import clock
from shared.documents import engine
from shared.documents.engine import render_pdf

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
GIVEN = "建国志强秀英丽华明辉海燕晓东文静国庆淑珍卫东玉兰振华红梅立新春生桂芳永刚晓明雪梅德胜美玲宏伟"
DISTRICTS = ["环翠区", "文登区", "荣成市", "乳山市", "高区", "经区", "临港区"]
BANKS = ["中国工商银行股份有限公司威海分行", "中国农业银行股份有限公司威海文登支行营业部",
         "威海市商业银行股份有限公司环翠区支行", "中国建设银行股份有限公司山东省威海市分行高区支行营业室"]


def table(n: int, run: int) -> tuple[d.Table, list[d.Detail]]:
    rows, details = [], []
    for i in range(n):
        name = SURNAMES[(i + run) % len(SURNAMES)] + GIVEN[(i * 7 + run) % len(GIVEN)] + GIVEN[(i * 13) % len(GIVEN)]
        subsidy, travel = 40_000 + run + (i % 97), (8_850 + i) if i % 5 == 0 else 0
        rows.append(d.Row(i + 1, uuid.UUID(int=i + 1), name, DISTRICTS[i % 7], 1, subsidy, travel, subsidy + travel,
                          BANKS[i % 4], f"6222********{i:04d}", "含未知活动类型（按“其他”标准）" if i % 50 == 0 else "",
                          0, "未支付"))
        details.append(d.Detail(name, DISTRICTS[i % 7], date(2026, 11, 1 + i % 28), "public_hearing", subsidy,
                                "approved"))
    issued = datetime(2026, 12, 8, 10, 0, tzinfo=clock.SHANGHAI)
    return d.Table(2026, 11, True, rows, status="issued", batch_no=f"202611-{run + 1:03d}", version=1,
                   issued_at=issued), details


def bare_xlsx(t: d.Table, details: list[d.Detail]) -> bytes:
    wb = Workbook(write_only=True)
    main, extra = wb.create_sheet("table"), wb.create_sheet("detail")
    for row in d.sheet_rows(t):
        main.append(row)
    for i, x in enumerate(details, start=1):
        extra.append((i, x.name, x.district, x.activity_date, x.activity_type, d._money(x.amount_fen), x.status))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def form(run: int) -> dict:
    people = [{"supervisor_id": f"s{i}", "name": f"监督员{run}-{i}", "adoption": "pending",
               "opinion": ("建议检察机关依法审慎作出决定，充分听取各方意见，加强释法说理。" * 10)[:300 - i] + str(run)}
              for i in range(3)]
    content = {"activity": {"activity_type_label": "公开听证/公开审查", "other_description": None,
                            "case_ref": f"威检刑诉〔2026〕{run}号", "office": "文登区人民检察院", "district": "文登区",
                            "starts_at": "2026-11-30T09:00:00+08:00", "ends_at": "2026-11-30T11:00:00+08:00",
                            "place": "文登区人民检察院听证室"}, "summary": "对一起案件拟作不起诉决定进行公开听证。",
               "participants": people}
    at = datetime(2026, 11, 30, 11, 5, tzinfo=clock.SHANGHAI)
    sigs = [{"supervisor_id": p["supervisor_id"], "signed_at": at, "method": "on_site_token",
             "signature_hash": f"{run:064x}", "image": None} for p in people]
    annex = [{"supervisor_id": "s0", "name": people[0]["name"], "adopted": True, "reason": "采纳。",
              "decided_by": "承办检察官", "decided_at": at}]
    return form_pdf.form_document(content, sigs, procuratorate="文登区人民检察院", content_hash="f" * 64,
                                  annex=annex, completed_at=at)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> dict:
    quick = bool(getattr(args, "quick", False))
    n, repeats, forms = (2_000, 2, 10) if quick else (10_000, 3, 30)
    first_s = timed(lambda: form_pdf.render(form(-1), dated=datetime(2026, 12, 1)))  # fonts read once
    xlsx_s, bare_s, pdf_s, measured_s, size, known = [], [], [], [], 0, 0
    for run in range(repeats):
        t, details = table(n, run)
        xlsx_s.append(timed(lambda t=t, details=details: d.to_xlsx(t, details)))
        bare_s.append(timed(lambda t=t, details=details: bare_xlsx(t, details)))
        started = time.perf_counter()
        document = d.to_pdf(t, unit="威海市司法局")
        pdf_s.append(time.perf_counter() - started)
        size = len(document)
        other, _ = table(n, run + 1_000)  # the baseline: every row measured by typst
        day = d.document_day(other)
        data = d.pdf_document(other, unit="威海市司法局", dated=day)
        layout = d.layout(data["rows"])
        known = sum(1 for lines in layout["lines"] if lines)
        every_row_auto = {**data, "layout": {**layout, "lines": [0] * len(layout["lines"])}}
        measured_s.append(timed(lambda data=every_row_auto, day=day: render_pdf(d.TEMPLATE, data, dated=day)))
    form_s = [timed(lambda run=run: form_pdf.render(form(run), dated=datetime(2026, 12, 1))) for run in range(forms)]
    xlsx, bare, pdf, measured, one = (statistics.median(v) for v in (xlsx_s, bare_s, pdf_s, measured_s, form_s))
    xlsx_ratio = ratio(xlsx, bare)
    return {
        "rows": [
            {"metric": f"monthly table xlsx, {n:,} rows + {n:,} activity lines", "value": round(xlsx * 1000, 1),
             "unit": "ms", "baseline": round(bare * 1000, 1), "ratio": xlsx_ratio, "target": "<= 2x openpyxl alone",
             "ok": xlsx_ratio is not None and xlsx_ratio <= 2},
            {"metric": f"monthly table PDF, {n:,} rows (typst)", "value": round(pdf, 2), "unit": "s",
             "baseline": round(bare, 2), "ratio": ratio(pdf, bare), "target": "<= 5 s", "ok": pdf <= 5},
            {"metric": f"monthly table PDF, every row measured by typst (rows of known height: {known:,})",
             "value": round(pdf, 2), "unit": "s", "baseline": round(measured, 2), "ratio": ratio(pdf, measured)},
            {"metric": "feedback form PDF (3 supervisors, annex)", "value": round(one * 1000, 1), "unit": "ms",
             "target": "<= 200 ms", "ok": one <= 0.2},
            {"metric": "first render of the process (fonts read)", "value": round(first_s * 1000, 1), "unit": "ms"},
            {"metric": "monthly table PDF size", "value": round(size / 1024, 1), "unit": "KiB"},
        ],
        "notes": ["typst memoizes layout in a process: each run renders different data",
                  "PDF baseline column: the bare openpyxl xlsx of the same rows, for scale",
                  "every row measured: the same template with all rows auto (before shared/documents/fit.py)"],
        "lines": n, "repeats": repeats, "forms": forms, "pdf_seconds": pdf_s, "xlsx_seconds": xlsx_s,
        "bare_seconds": bare_s, "form_seconds": form_s, "every_row_measured_seconds": measured_s,
        "rows_of_known_height": known, "engine": f"typst {engine.typst.__version__}",
    }
