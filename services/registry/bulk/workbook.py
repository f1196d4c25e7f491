"""The roster's xlsx files: the appointees' import template, reading an uploaded file, the roster export.

Pure code (bytes in, rows or bytes out; no database): the use cases are in `bulk/service.py`. Every refusal of
a file is a `BadFile` with a stable code and a Chinese detail (the router answers 422 problem+json).
"""

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils.exceptions import InvalidFileException

MAX_BYTES = 5 * 1024 * 1024  # a 5 000-row file of the template is about 0.5 MB
MAX_ROWS = 5_000
SHEET = "人民监督员"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# field -> header of the import template: the fields of POST /supervisors then POST /supervisors/{id}/appointments
IMPORT_COLUMNS: dict[str, str] = {
    "name": "姓名",
    "id_number": "公民身份号码",
    "phone": "手机号码",
    "district": "辖区",
    "employer": "工作单位",
    "recommending_body": "推荐单位",
    "specialties": "专业领域",
    "decision_no": "任命决定文号",
    "decision_date": "任命决定日期",
    "term_start": "任期开始日期",
    "certificate_no": "证书编号",
    "work_card_no": "工作证编号",
    "level": "检察院层级",
}
DATE_FIELDS = frozenset({"decision_date", "term_start"})
LEVELS_ZH = {"市级": "city", "设区的市级": "city", "省级": "provincial", "city": "city", "provincial": "provincial"}
SPECIALTY_SEPARATORS = re.compile(r"[、，,；;\s]+")
REQUIRED = ("name", "id_number", "phone", "district", "employer", "recommending_body", "decision_no", "decision_date")


class BadFile(Exception):
    """The file as a whole cannot be read as the template (422, nothing imported)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class RowError:
    """One reason a row of the file cannot be imported: Excel row number, the column's header, Chinese reason."""

    row: int
    column: str | None
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class ImportRow:
    """A data row: its Excel row number, the supervisor's fields, the appointment's fields, the cell problems."""

    row: int
    supervisor: dict[str, Any]
    appointment: dict[str, Any]
    errors: tuple[RowError, ...]


# --- the template --------------------------------------------------------------------------------

def template(*, districts: list[str], specialties: list[str]) -> bytes:
    """The import template: the header row, one example row, and a sheet saying how to fill each column."""
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(list(IMPORT_COLUMNS.values()))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for letter, width in zip("ABCDEFGHIJKLM", (10, 22, 14, 10, 24, 24, 18, 22, 14, 14, 20, 18, 12), strict=True):
        sheet.column_dimensions[letter].width = width
        sheet.column_dimensions[letter].number_format = "@"  # text: Excel keeps all 18 digits of an id number
    notes = book.create_sheet("填写说明")
    notes.append(["列", "是否必填", "说明"])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for field, header in IMPORT_COLUMNS.items():
        notes.append([header, "必填" if field in REQUIRED else "可空", HINTS[field]])
    notes.append([])
    notes.append(["辖区可选值", "", "、".join(districts)])
    notes.append(["专业领域可选值", "", "、".join(specialties)])
    notes.append(["说明", "", f"第一个工作表“{SHEET}”的第一行为表头，不得改动；数据自第2行起，至多{MAX_ROWS}行。"
                  "任一行有误则整个文件不导入，并逐行列出错误。"])
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["C"].width = 90
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HINTS = {
    "name": "姓名，至多50字",
    "id_number": "18位公民身份号码（请以文本格式填写，勿用数字格式）；性别与出生日期由号码推出",
    "phone": "11位中国大陆手机号码",
    "district": "威海市的区市（见下方可选值）",
    "employer": "工作单位",
    "recommending_body": "推荐单位",
    "specialties": "专业领域目录中的名称，多个以“、”分隔；可空",
    "decision_no": "任命决定文号，如 威司任〔2026〕1号",
    "decision_date": "任命决定日期，如 2026-01-15",
    "term_start": "任期开始日期；空则为决定日期（任期五年，R4.1）",
    "certificate_no": "选任证书编号；空则自动编号（R5.1）",
    "work_card_no": "工作证编号；空则自动编号（R5.1）",
    "level": "市级或省级（N-TERM：一人只能担任一个层级）；空则为本局层级",
}


# --- reading an uploaded file ----------------------------------------------------------------------

def _text(value: Any) -> str | None:
    """A cell as text: numbers without a trailing .0, dates in ISO form, blanks as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _date(value: Any) -> date | str | None:
    """A date cell (an Excel date, or text 2026-01-15 / 2026/1/15 / 2026年1月15日); other text is kept as it is
    for the validation to refuse."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if text is None:
        return None
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
    if match:
        try:
            return date(*(int(g) for g in match.groups()))
        except ValueError:
            return text
    return text


def _cells(row: int, raw: tuple[Any, ...]) -> ImportRow:
    values = dict(zip(IMPORT_COLUMNS, raw, strict=False))
    errors: list[RowError] = []
    id_cell = values.get("id_number")
    if (isinstance(id_cell, float) and not id_cell.is_integer()) or (isinstance(id_cell, int | float) and \
            abs(id_cell) >= 10**15):
        # Excel keeps 15 significant digits: an 18-digit number typed as a number has lost its last digits
        errors.append(RowError(row, IMPORT_COLUMNS["id_number"], "invalid_id_number",
                               "公民身份号码以数字格式保存，后几位已丢失；请将该列设为文本格式后重新填写。"))
        id_cell = None
    text = {field: _text(values.get(field)) for field in IMPORT_COLUMNS if field not in DATE_FIELDS}
    text["id_number"] = _text(id_cell)
    for field in REQUIRED:
        if field not in DATE_FIELDS and text.get(field) is None and not (field == "id_number" and errors):
            errors.append(RowError(row, IMPORT_COLUMNS[field], "required", f"“{IMPORT_COLUMNS[field]}”不能为空。"))
    level = text.get("level")
    if level is not None and level not in LEVELS_ZH:
        errors.append(RowError(row, IMPORT_COLUMNS["level"], "invalid_level", "检察院层级应为“市级”或“省级”。"))
    specialties = [s for s in SPECIALTY_SEPARATORS.split(text.get("specialties") or "") if s]
    supervisor = {"name": text["name"], "id_number": text["id_number"], "phone": text["phone"],
                  "district": text["district"], "employer": text["employer"],
                  "recommending_body": text["recommending_body"], "specialties": specialties}
    appointment = {"decision_no": text["decision_no"], "decision_date": _date(values.get("decision_date")),
                   "term_start": _date(values.get("term_start")), "certificate_no": text["certificate_no"],
                   "work_card_no": text["work_card_no"], "level": LEVELS_ZH.get(level or "")}
    if appointment["decision_date"] is None:
        errors.append(RowError(row, IMPORT_COLUMNS["decision_date"], "required", "“任命决定日期”不能为空。"))
    return ImportRow(row, {k: v for k, v in supervisor.items() if v is not None},
                     {k: v for k, v in appointment.items() if v is not None}, tuple(errors))


def read_import(data: bytes) -> list[ImportRow]:
    """The data rows of an uploaded template (blank rows skipped); BadFile when it is not one."""
    if len(data) > MAX_BYTES:
        raise BadFile("file_too_large", f"文件超过{MAX_BYTES // (1024 * 1024)} MB，请分批导入。")
    if not data.startswith(b"PK\x03\x04"):
        raise BadFile("not_xlsx", "文件不是 xlsx 格式的 Excel 工作簿，请使用下载的导入模板。")
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        raise BadFile("not_xlsx", "文件无法作为 xlsx 工作簿读取（已损坏或不是导入模板）。") from exc
    try:
        if not book.worksheets:
            raise BadFile("invalid_template", "工作簿中没有工作表。")
        rows = book.worksheets[0].iter_rows(max_col=len(IMPORT_COLUMNS), values_only=True)
        header = [_text(v) for v in next(rows, ())]
        header += [None] * (len(IMPORT_COLUMNS) - len(header))
        if header != list(IMPORT_COLUMNS.values()):
            raise BadFile("invalid_template",
                          "第1行表头与导入模板不符，应依次为：" + "、".join(IMPORT_COLUMNS.values()) + "。")
        out: list[ImportRow] = []
        for number, raw in enumerate(rows, start=2):
            if all(_text(v) is None for v in raw):
                continue
            if len(out) == MAX_ROWS:
                raise BadFile("too_many_rows", f"数据超过{MAX_ROWS}行，请分批导入。")
            out.append(_cells(number, raw))
    except BadFile:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        raise BadFile("not_xlsx", "文件无法作为 xlsx 工作簿读取（已损坏或不是导入模板）。") from exc
    finally:
        book.close()
    if not out:
        raise BadFile("empty_file", "文件中没有数据行（数据自第2行起）。")
    return out


# --- the roster export ---------------------------------------------------------------------------

EXPORT_COLUMNS: dict[str, str] = {
    "name": "姓名", "gender": "性别", "id_number": "公民身份号码", "birth_date": "出生日期", "phone": "手机号码",
    "district": "辖区", "employer": "工作单位", "recommending_body": "推荐单位", "specialties": "专业领域",
    "status": "状态", "decision_no": "任命决定文号", "decision_date": "任命决定日期", "term_start": "任期开始日期",
    "term_end": "任期届满日期", "certificate_no": "证书编号", "work_card_no": "工作证编号", "eligible": "可参加抽选",
    "id": "系统编号",
}
GENDER_ZH = {"male": "男", "female": "女"}
MASKED_BIRTH_DATE = "（已隐去）"


def export(rows: list[dict[str, Any]], *, status_zh: dict[str, str], unmasked: bool) -> bytes:
    """The roster as one sheet (write-only mode: memory stays flat); each row a dict of EXPORT_COLUMNS' fields.

    R3.1: masked by default (the birth date is not shown beside the masked id: together they rebuild it)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(SHEET)
    sheet.append(list(EXPORT_COLUMNS.values()))
    for r in rows:
        sheet.append([
            r["name"], GENDER_ZH.get(r["gender"], r["gender"]), r["id_number"],
            r["birth_date"] if unmasked else MASKED_BIRTH_DATE, r["phone"], r["district"], r["employer"],
            r["recommending_body"], "、".join(r["specialties"] or []), status_zh.get(r["status"], r["status"]),
            r["decision_no"], r["decision_date"], r["term_start"], r["term_end"], r["certificate_no"],
            r["work_card_no"], "是" if r["eligible"] else "否", r["id"],
        ])
    if not unmasked:
        sheet.append([])
        sheet.append(["说明：身份号码与手机号码已部分隐去，出生日期不显示（R3.1）。"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
