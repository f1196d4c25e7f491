"""The portal's own form parsing: a multipart body by the standard library (files and fields), money typed in yuan,
and a service's refusal marked beside the fields it names."""

import httpx
import pytest

from services.portal.backend import ServiceError
from services.portal.finance_pages import fen_of, in_force_today
from services.portal.web import PageError, parse_multipart, refusal_of


def multipart(data: dict, files: dict) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://portal/", data=data, files=files)
    return request.headers["content-type"], request.read()


def test_a_multipart_form_gives_its_fields_and_the_file_bytes_unchanged():
    raw = bytes(range(256)) * 4 + b"\r\n--boundary-like\r\n"  # binary, with CRLFs and dashes inside
    content_type, body = multipart({"csrf_token": "tok", "说明": "票据"}, {
        "receipt": ("车票.pdf", raw, "application/pdf"), "empty": ("", b"", "application/octet-stream")})
    fields, files = parse_multipart(content_type, body)
    assert fields["csrf_token"] == "tok" and fields["说明"] == "票据"
    assert files["receipt"].data == raw and files["receipt"].media_type == "application/pdf"
    assert "empty" not in files  # a file input left empty is no file


def test_a_body_that_is_not_multipart_is_a_clear_refusal():
    with pytest.raises(PageError) as refused:
        parse_multipart("text/plain", b"hello")
    assert refused.value.status == 400


@pytest.mark.parametrize(("text", "fen"), [("400", 40000), ("400.5", 40050), ("400.50", 40050), ("0.01", 1),
                                           ("1,200", 120000), ("-1", None), ("4.005", None), ("四百", None),
                                           ("", None)])
def test_money_is_typed_in_yuan_and_sent_in_fen(text, fen):
    assert fen_of(text) == fen


def test_a_refusal_marks_the_field_its_code_or_its_validation_errors_name():
    rule = ServiceError("registry", 422, "invalid_phone", "手机号码无效", "请输入11位中国大陆手机号码。")
    assert refusal_of(rule, {"invalid_phone": "phone"})["fields"] == {"phone": "请输入11位中国大陆手机号码。"}
    validation = ServiceError("finance", 422, "validation_error", "请求数据校验失败", "请检查以下字段后重试。", {
        "errors": [{"loc": ["body", "items", 0, "amount_fen"], "msg": "x"}, {"loc": ["body", "travel_date"]}]})
    shown = refusal_of(validation)
    assert set(shown["fields"]) == {"amount_fen", "travel_date"} and shown["service"] == "补助经费服务"


def test_the_rate_in_force_is_finances_own_choice_N_RATE():
    rates = [{"id": 1, "activity_type": "other", "amount_fen": 15000, "effective_from": "2024-12-01",
              "status": "approved"},
             {"id": 2, "activity_type": "other", "amount_fen": 99900, "effective_from": "2024-12-02",
              "status": "pending"},  # not approved: never in force
             {"id": 3, "activity_type": "other", "amount_fen": 20000, "effective_from": "9999-01-01",
              "status": "approved"}]  # not yet
    assert in_force_today(rates) == {"other": 1}
