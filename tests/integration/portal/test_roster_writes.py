"""The roster's writes through the portal against the real registry (PostgreSQL, broker): register and appoint (R4.1,
R5.1), the xlsx import (all or nothing, every bad row named), resignation (R7.1) and dismissal (R8.1) with the R9.1
notices through the document door. Every write is read back from registry; every refusal is registry's own Chinese
message beside the form, with what was typed kept; a stale second tab gets registry's 409 and nothing twice."""

from __future__ import annotations

import io
import re
import uuid

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from services.registry.bulk.workbook import IMPORT_COLUMNS
from shared import clock
from tests.integration.portal.helpers import csrf_of, signed_in
from tests.support.registry_helpers import ADMIN, appointed, new_id_number, new_phone


@pytest.fixture
async def registry(registry_app):
    """Registry itself, to read back what the portal did (and to set up people)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry_app), base_url="http://registry") as c:
        yield c


def candidate(**overrides) -> dict[str, str]:
    body = {"name": "登" + uuid.uuid4().hex[:6], "id_number": new_id_number(), "phone": new_phone(),
            "district": "文登区", "employer": "威海市某公司", "recommending_body": "文登区某街道"}
    return {**body, **overrides}


async def csrf(client: httpx.AsyncClient, path: str = "/") -> str:
    return csrf_of((await client.get(path)).text)


async def named(registry: httpx.AsyncClient, prefix: str) -> list[dict]:
    return (await registry.get("/supervisors", params={"name": prefix, "limit": 100}, headers=ADMIN)).json()["items"]


async def test_bureau_registers_and_appoints_R4_1_R5_1_and_a_stale_tab_appoints_nothing_twice(live, registry):
    await signed_in(live)
    page = await live.get("/console/roster/new")
    assert page.status_code == 200 and 'for="f-id_number"' in page.text and 'name="specialty:法律"' in page.text
    body = candidate()
    r = await live.post("/console/roster/new", data={**body, "specialty:法律": "on", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"].endswith("/appoint?done=created")
    supervisor_id = r.headers["location"].split("/")[3]
    [person] = await named(registry, body["name"])
    assert (person["id"], person["status"], person["specialties"]) == (supervisor_id, "candidate", ["法律"])

    form = await live.get(r.headers["location"])
    assert form.status_code == 200 and "已登记为候选人员" in form.text and 'for="f-decision_no"' in form.text
    appointment = {"decision_no": "威司任〔2026〕门户1号", "decision_date": clock.today().isoformat(),
                   "csrf_token": csrf_of(form.text)}
    done = await live.post(f"/console/roster/{supervisor_id}/appoint", data=appointment)
    assert done.status_code == 303 and done.headers["location"] == f"/console/roster/{supervisor_id}?done=appointed"
    shown = await live.get(done.headers["location"])
    assert "已任命（R4.1）" in shown.text and "在任" in shown.text
    terms = (await registry.get(f"/supervisors/{supervisor_id}/appointments", headers=ADMIN)).json()
    assert [(t["decision_no"], bool(t["certificate_no"])) for t in terms] == [("威司任〔2026〕门户1号", True)]

    # the same form again from a second tab: registry's 409 beside the form, what was typed kept, one term only
    stale = await live.post(f"/console/roster/{supervisor_id}/appoint", data=appointment)
    assert stale.status_code == 409 and "上一任期未结束" in stale.text
    assert 'value="威司任〔2026〕门户1号"' in stale.text
    assert len((await registry.get(f"/supervisors/{supervisor_id}/appointments", headers=ADMIN)).json()) == 1


async def test_registrys_refusal_is_shown_beside_the_field_with_what_was_typed_and_nothing_is_registered(live,
                                                                                                       registry):
    await signed_in(live)
    body = candidate(phone="12345")
    r = await live.post("/console/roster/new", data={**body, "csrf_token": await csrf(live)})
    assert r.status_code == 422
    assert "手机号码无效" in r.text and "请输入11位中国大陆手机号码" in r.text  # registry's own words
    assert re.search(r'id="f-phone"[^>]*aria-invalid="true"', r.text)
    assert f'value="{body["name"]}"' in r.text and f'value="{body["employer"]}"' in r.text
    assert await named(registry, body["name"]) == []


async def test_a_district_bureau_registers_in_its_own_district_only_R2_1(live, registry):
    await signed_in(live, "dev-district-huancui")
    page = await live.get("/console/roster/new")
    assert page.status_code == 200 and re.search(r'id="f-district"[^>]*value="环翠区"[^>]*readonly', page.text)
    body = candidate(district="文登区")  # another district typed in: the form sends its own
    r = await live.post("/console/roster/new", data={**body, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=created")  # the city bureau appoints
    [person] = await named(registry, body["name"])
    assert (person["district"], person["status"]) == ("环翠区", "candidate")
    for path in ("/console/roster/import", f"/console/roster/{person['id']}/appoint"):
        assert (await live.get(path)).status_code == 403


@pytest.mark.parametrize(("persona", "path"), [("dev-finance", "/console/roster/new"),
                                               ("dev-auditor", "/console/roster/import"),
                                               ("dev-district-huancui", "/console/dismissals")])
async def test_roster_writes_are_refused_to_other_roles(live, persona, path):
    await signed_in(live, persona)
    r = await live.get(path)
    assert r.status_code == 403 and "无权查看此页面" in r.text


def workbook(rows: list[dict]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "人民监督员"
    sheet.append(list(IMPORT_COLUMNS.values()))
    for row in rows:
        sheet.append([row.get(field) for field in IMPORT_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_rows(prefix: str, n: int) -> list[dict]:
    return [{"name": f"{prefix}{i}", "id_number": new_id_number(), "phone": new_phone(), "district": "乳山市",
             "employer": "乳山市某单位", "recommending_body": "乳山市某社区", "specialties": "法律",
             "decision_no": f"威司任〔2026〕{prefix}{i}号", "decision_date": clock.today().isoformat()}
            for i in range(n)]


async def upload(live: httpx.AsyncClient, data: bytes) -> httpx.Response:
    token = csrf_of((await live.get("/console/roster/import")).text)
    return await live.post("/console/roster/import", data={"csrf_token": token},
                           files={"file": ("名单.xlsx", data, "application/octet-stream")})


async def test_import_with_one_bad_row_among_many_imports_nothing_and_names_the_row_R4_1(live, registry):
    await signed_in(live)
    page = await live.get("/console/roster/import")
    assert page.status_code == 200 and 'for="import-file"' in page.text and 'enctype="multipart/form-data"' in page.text
    template = await live.get("/console/roster/import/template")
    assert template.status_code == 200 and template.headers["content-type"].startswith(
        "application/vnd.openxmlformats")
    header = next(load_workbook(io.BytesIO(template.content)).active.iter_rows(values_only=True))
    assert list(header) == list(IMPORT_COLUMNS.values())

    prefix = "导" + uuid.uuid4().hex[:5]
    rows = import_rows(prefix, 12)
    rows[6]["phone"] = "1380000"  # Excel row 8 (the header is row 1)
    refused = await upload(live, workbook(rows))
    assert refused.status_code == 422 and "导入文件有误，未导入任何记录" in refused.text
    bad = re.findall(r'<tr data-row="(\d+)" data-code="([^"]+)"><td class="num">第 \d+ 行</td><td>([^<]*)</td>'
                     r'<td>([^<]*)</td>', refused.text)
    # exactly what registry reports for this file (asked directly: it imports nothing either)
    direct = await registry.post("/supervisors/imports", content=workbook(rows), headers={
        **ADMIN, "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert direct.status_code == 422
    assert bad == [(str(e["row"]), e["code"], e["column"], e["reason"]) for e in direct.json()["errors"]]
    assert bad[0][:3] == ("8", "invalid_phone", "手机号码")
    assert "共12行数据，其中1行有误（第8行）" in refused.text
    assert await named(registry, prefix) == []

    rows[6]["phone"] = new_phone()
    done = await upload(live, workbook(rows))
    assert done.status_code == 200 and re.search(r'id="imported-count">12<', done.text)
    people = await named(registry, prefix)
    assert len(people) == 12 and {p["status"] for p in people} == {"active"}


async def test_a_file_that_is_not_the_template_gets_registrys_reason(live):
    await signed_in(live)
    r = await upload(live, b"not a workbook")
    assert r.status_code == 422 and "导入文件无法使用，未导入任何记录" in r.text


async def test_resignation_applied_and_approved_is_a_dismissal_with_its_notices_R7_1_R9_1(live, registry):
    person = await appointed(registry, district="荣成市")
    url = f"/console/roster/{person['id']}"
    await signed_in(live)
    page = await live.get(url)
    assert page.status_code == 200 and 'id="resignation-form"' in page.text and 'for="f-reason"' in page.text
    r = await live.post(f"{url}/resignations", data={"reason_kind": "job_change", "reason": "调往外地工作",
                                                      "applied_on": "", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    page = await live.get(r.headers["location"])
    assert "已登记辞职申请" in page.text and 'id="resignation-form"' not in page.text  # one pending at a time
    [resignation] = (await registry.get(f"/supervisors/{person['id']}/resignations", headers=ADMIN)).json()
    assert (resignation["status"], resignation["reason"]) == ("pending", "调往外地工作")
    decision = {"approve": "true", "note": "同意", "csrf_token": csrf_of(page.text)}
    r = await live.post(f"{url}/resignations/{resignation['id']}/decision", data=decision)
    assert r.status_code == 303 and "resignation_approved" in r.headers["location"]
    assert (await registry.get(f"/supervisors/{person['id']}", headers=ADMIN)).json()["status"] == "resigned"
    stale = await live.post(f"{url}/resignations/{resignation['id']}/decision", data=decision)  # a second tab
    assert stale.status_code == 409 and "辞职申请已处理" in stale.text

    page = await live.get(url)
    [link] = re.findall(r'href="(/console/dismissals/[0-9a-f-]{36})"', page.text)
    case = await live.get(link)
    assert case.status_code == 200 and "本人申请辞去担任的人民监督员" in case.text
    notices = re.findall(r'href="(/documents/registry/dismissals/[0-9a-f-]{36}/notices/([a-z_]+)\.pdf)"', case.text)
    assert sorted(kind for _, kind in notices) == ["employer", "person", "procuratorate", "recommending_body"]
    pdf = await live.get(notices[0][0])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content[:4] == b"%PDF"


async def test_dismissal_on_a_ground_with_evidence_and_registrys_refusals_R8_1_R9_1(live, registry):
    person = await appointed(registry, district="高区")
    url = f"/console/roster/{person['id']}"
    await signed_in(live)
    page = await live.get(url)
    assert 'id="dismissal-form"' in page.text and 'for="f-ground"' in page.text
    # ground 5 needs the annual round whose "unqualified" result registry received (R8.1): refused, form kept
    r = await live.post(f"{url}/dismissals", data={"ground": "5", "evidence_note": "年度考核不合格",
                                                   "appraisal_round_id": "", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 422 and "缺少年度考核结果" in r.text and ">年度考核不合格</textarea>" in r.text
    assert (await registry.get(url.replace("/console/roster", "/supervisors"), headers=ADMIN)).json()["status"] == \
        "active"
    form = {"ground": "2", "evidence_note": "公安机关出具的证明", "appraisal_round_id": "",
            "csrf_token": csrf_of(page.text)}
    r = await live.post(f"{url}/dismissals", data=form)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=dismissed")
    case = await live.get(r.headers["location"])
    assert case.status_code == 200 and "已免除资格" in case.text and "丧失中华人民共和国国籍" in case.text
    assert person["certificate_no"] in case.text  # the recall record (R5.1, R9.1)
    announcement = re.search(r'href="(/documents/registry/dismissals/[0-9a-f-]{36}/announcement\.pdf)"', case.text)
    pdf = await live.get(announcement.group(1))
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
    after = (await registry.get(f"/supervisors/{person['id']}", headers=ADMIN)).json()
    assert after["status"] == "dismissed"
    stale = await live.post(f"{url}/dismissals", data=form)  # the same form from a second tab
    assert stale.status_code == 409 and "不能免除资格" in stale.text
    cases = (await registry.get("/dismissals", params={"supervisor_id": person["id"]}, headers=ADMIN)).json()
    assert cases["total"] == 1
    listed = await live.get("/console/dismissals", params={"status": "confirmed"})
    assert listed.status_code == 200 and "免除资格案件（R8.1、R37.1）" in listed.text
