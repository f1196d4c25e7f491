"""R17.1: the printable 《威海市人民监督员履职情况反馈表》 (typst template feedback_form.typ, shared/documents).

The signed content is printed as it was signed, each opinion whole (a long one continues on the next pages under
a repeated "（续）" head); an adoption decided later (R18.1) is printed as a dated annex after it, and the form's
采纳情况 row points to that annex. `form_document` is pure: the form's words; `render` lays them out.
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from services.casework import rules
from shared.documents.engine import image_bytes, render_pdf
from shared.documents.words import document_date, moment

TEMPLATE = Path(__file__).with_name("feedback_form.typ")
KIND = "feedback_form"
NUMBER_CODE = "威检监反"  # 编号：威检监反〔2026〕3号, a sequence per year (shared/documents/archive.py)
METHOD_ZH = {"on_site_token": "现场扫码签字确认（一次性签字令牌）"}
UNDECIDED = "检察机关尚未作出采纳决定（作出后以附页告知）"
FINGERPRINT_CHARS = 16


def _dt(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def fingerprint(signature_hash: str) -> str:
    """R17.1: a short, readable fingerprint of a signature hash: its first 16 hex digits in groups of four."""
    head = signature_hash[:FINGERPRINT_CHARS].upper()
    return " ".join(head[i:i + 4] for i in range(0, len(head), 4))


def adoption_row(signed: str, decision: dict[str, Any] | None) -> str:
    """R17.1/R18.1: the 采纳情况 row: the decision (with its date and a pointer to the annex) once made; before
    that, that it is not yet decided (never a bare 待定)."""
    if decision is None:
        return {"adopted": "采纳", "not_adopted": "未采纳"}.get(signed, UNDECIDED)
    return (f"{'采纳' if decision['adopted'] else '未采纳'}（{document_date(_dt(decision['decided_at']))}作出决定，"
            "详见附页“监督意见采纳情况”）")


def form_document(content: dict[str, Any], signatures: list[dict[str, Any]], *, procuratorate: str,
                  content_hash: str, annex: list[dict[str, Any]] | None = None,
                  completed_at: datetime | None = None) -> dict[str, Any]:
    """R17.1: the form's words for the template. `signatures`: [{supervisor_id, signed_at, method, signature_hash,
    image (PNG bytes or None)}] (local times); `annex`: [{supervisor_id, name, adopted, reason, decided_by,
    decided_at}]."""
    act = content["activity"]
    kind = act["activity_type_label"] + (f"（{act['other_description']}）" if act.get("other_description") else "")
    signed = {str(s["supervisor_id"]): s for s in signatures}
    decisions = {str(a["supervisor_id"]): a for a in annex or []}
    people = []
    for p in content["participants"]:
        sig = signed.get(str(p["supervisor_id"]))
        people.append({
            "name": p["name"], "opinion": p["opinion"] or "（未记录）",
            "adoption": adoption_row(p["adoption"], decisions.get(str(p["supervisor_id"]))),
            "signature": None if sig is None else {
                "signer": p["name"], "time": moment(_dt(sig["signed_at"])),
                "method": METHOD_ZH.get(sig["method"], sig["method"]),
                "fingerprint": fingerprint(sig["signature_hash"]),
                "image": image_bytes(sig.get("image"))},
        })
    return {
        "title": rules.FORM_TITLE, "unit": procuratorate,
        "facts": [["案号", act["case_ref"]], ["活动类型", kind], ["承办单位", f"{act['office']}（{act['district']}）"],
                  ["活动时间", f"{moment(_dt(act['starts_at']))} 至 {moment(_dt(act['ends_at']))}"],
                  ["活动地点", act["place"]]],
        "summary": content["summary"] or "（无）", "participants": people, "content_hash": content_hash,
        "completed": document_date(completed_at) if completed_at else None,
        "annex": [{"name": a["name"], "decision": "采纳" if a["adopted"] else "未采纳", "reason": a["reason"],
                   "decided": f"{moment(_dt(a['decided_at']))}（{a['decided_by']}）"} for a in annex or []],
    }


def document_day(content: dict[str, Any], completed_at: datetime | None, annex: list[dict[str, Any]]) -> datetime:
    """The form's date (its PDF's date): the last decision of the annex, else completion, else the activity."""
    days = [_dt(a["decided_at"]) for a in annex] + ([completed_at] if completed_at else [])
    return max(days) if days else _dt(content["activity"]["starts_at"])


def render(data: dict[str, Any], *, dated: datetime) -> bytes:
    return render_pdf(TEMPLATE, data, dated=dated)
