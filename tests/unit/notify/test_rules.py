"""Pure rules of notify: quiet hours, backoff, reminder stages, the audience of a reminder, and R3.1 (no full id
number in any message)."""

import uuid
from datetime import UTC, date, datetime, time

from services.notify import rules
from shared.clock import SHANGHAI

START, END = time(21, 0), time(8, 0)


def at(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def test_quiet_hours_span_midnight_in_shanghai() -> None:
    assert not rules.in_quiet_hours(at(20, 59), START, END)
    assert rules.in_quiet_hours(at(21, 0), START, END)
    assert rules.in_quiet_hours(at(3, 0), START, END)
    assert not rules.in_quiet_hours(at(8, 0), START, END)
    # 13:30 UTC is 21:30 in Shanghai
    assert rules.in_quiet_hours(datetime(2026, 11, 20, 13, 30, tzinfo=UTC), START, END)


def test_a_non_urgent_sms_waits_for_eight_an_urgent_one_goes() -> None:
    assert rules.send_after(at(22, 30), urgent=False, start=START, end=END) == at(8, 0, day=21)
    assert rules.send_after(at(6, 0), urgent=False, start=START, end=END) == at(8, 0)
    assert rules.send_after(at(22, 30), urgent=True, start=START, end=END) is None
    assert rules.send_after(at(12, 0), urgent=False, start=START, end=END) is None


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [rules.backoff_seconds(n, base=30, cap=200) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 200, 200]


def test_reminder_stages_a_day_before_on_the_day_and_after() -> None:
    today = date(2027, 3, 10)
    assert rules.reminder_stage(date(2027, 3, 11), today) == "day_before"
    assert rules.reminder_stage(today, today) == "due_day"
    assert rules.reminder_stage(date(2027, 3, 1), today) == "overdue"
    assert rules.reminder_stage(date(2027, 3, 12), today) is None


def test_reminder_key_is_rule_subject_due_day_and_stage() -> None:
    item = {"rule": "R20.1", "kind": "transmittal_due", "subject_type": "activity", "subject_id": "a1",
            "due_on": "2027-03-11"}
    assert rules.reminder_key("casework", item, "day_before") != rules.reminder_key("casework", item, "due_day")
    assert rules.reminder_key("casework", item, "overdue") == rules.reminder_key("casework", dict(item), "overdue")


def test_r35_1_a_defence_window_reminds_the_supervisor_themself() -> None:
    person = uuid.uuid4()
    item = {"rule": "R35.1", "kind": "defence_window_ends", "title": "陈述申辩期届满", "subject_type": "participant",
            "subject_id": f"{uuid.uuid4()}/{person}", "district": "环翠区", "roles": ["supervisor", "bureau_admin"],
            "due_on": "2027-03-11"}
    drafts = rules.reminders("appraisal", item, "day_before")
    assert [(d.supervisor_id, d.role) for d in drafts] == [(str(person), None), (None, "bureau_admin")]
    assert drafts[0].channels == ("inbox", "sms")
    # a supervisor role on an item that names nobody reaches nobody (never a broadcast to every supervisor)
    assert rules.reminders("appraisal", {**item, "subject_type": "round", "subject_id": "r1"}, "due_day")[0].role \
        == "bureau_admin"


def test_r3_1_full_id_numbers_are_masked_in_every_text() -> None:
    text = "身份证号370602199001011234，另一个11010519491231002X。编号 12345678901234567890 不是身份号码"
    masked = rules.redact_id_numbers(text)
    assert "370602199001011234" not in masked and "11010519491231002X" not in masked
    assert "12345678901234567890" in masked  # 20 digits: not an id number
    assert rules.sms_text("甲" * 400).endswith("…") and len(rules.sms_text("甲" * 400)) == 300


def test_r14_1_short_staffing_goes_to_the_city_bureau_and_the_district() -> None:
    activity = rules.Activity(activity_type="公开听证", place="听证室", starts_at=at(9), district="荣成市",
                              office="荣成市人民检察院")
    drafts = rules.short_staffed(request_id=uuid.uuid4(), shortfall={"local": 2, "cross": 1}, activity=activity)
    assert [(d.role, d.district) for d in drafts] == [("bureau_admin", None), ("district_bureau", "荣成市")]
    assert "本区缺2人" in drafts[0].body and "跨区缺1人" in drafts[0].body and drafts[0].urgent
