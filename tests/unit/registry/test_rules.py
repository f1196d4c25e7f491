"""Pure rules of the registry (no I/O): each test names the rule id it guards."""

from datetime import date

import pytest

from services.registry import rules
from services.registry.rules import (
    Attempt,
    DismissalGround,
    RuleViolation,
    Term,
    add_months,
    bans_permanently,
    check_attempt_kind,
    check_id_number,
    check_mobile,
    check_term_limit,
    eligibility,
    event_reasons,
    id_check_digit,
    initial_training_due,
    initial_training_overdue,
    is_late_report,
    needs_makeup,
    term_end,
)


def valid_id(first17: str) -> str:
    return first17 + id_check_digit(first17)


# --- GB 11643 and mobile (R3.1 input validation) -----------------------------------------------

@pytest.mark.parametrize("value", ["11010519491231002X", "11010519491231002x", " 11010519491231002X ",
                                   valid_id("37100219900101123"), valid_id("37108119851120456")])
def test_gb11643_valid_numbers_accepted_and_normalized(value):
    normalized = check_id_number(value)
    assert normalized == value.strip().upper()
    assert len(normalized) == 18


def test_gb11643_trailing_x_check_digit():
    assert id_check_digit("11010519491231002") == "X"
    assert check_id_number("11010519491231002x").endswith("X")


@pytest.mark.parametrize("value, fragment", [
    ("110105194912310021", "校验码"),  # wrong check digit
    ("371002199001011234", "校验码"),
    ("11010519491231002", "18位"),  # 17 digits
    ("1101051949123100211", "18位"),  # 19 digits
    ("11010519491331002X", "出生日期"),  # month 13 (digits otherwise fine)
    ("110105194902300028", "出生日期"),  # Feb 30
    ("440524188001010014", "出生日期"),  # valid check digit, born before 1900
    ("1101051949123100X1", "最后一位"),  # X inside
    ("01010519491231002X", "最后一位"),  # leading zero
])
def test_gb11643_invalid_numbers_refused(value, fragment):
    with pytest.raises(RuleViolation) as err:
        check_id_number(value)
    assert err.value.code == "invalid_id_number"
    assert fragment in err.value.detail


def test_gb11643_future_birth_date_refused():
    with pytest.raises(RuleViolation):
        check_id_number(valid_id("37100220300101123"), today=date(2026, 1, 1))


def test_gender_and_birth_date_from_id_number():
    number = valid_id("37100219900101123")  # 17th digit 3: odd → male
    assert rules.gender_of(number) == "male"
    assert rules.birth_date_of(number) == date(1990, 1, 1)
    assert rules.gender_of("11010519491231002X") == "female"


@pytest.mark.parametrize("value, expected", [
    ("13812345678", "13812345678"), ("+86 138-1234-5678", "13812345678"), ("008619912345678", "19912345678"),
])
def test_mobile_valid(value, expected):
    assert check_mobile(value) == expected


@pytest.mark.parametrize("value", ["12812345678", "1381234567", "138123456789", "0631-5201234", "abc", ""])
def test_mobile_invalid(value):
    with pytest.raises(RuleViolation) as err:
        check_mobile(value)
    assert err.value.code == "invalid_phone"


# --- R6.1 month arithmetic and late reports ----------------------------------------------------

@pytest.mark.parametrize("day, months, expected", [
    (date(2025, 1, 31), 1, date(2025, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2025, 3, 31), 1, date(2025, 4, 30)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)),
    (date(2025, 11, 30), 2, date(2026, 1, 30)),
    (date(2025, 3, 31), -1, date(2025, 2, 28)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
])
def test_add_months_clamps_to_month_end(day, months, expected):
    assert add_months(day, months) == expected


def test_r6_1_report_within_one_month_is_not_late():
    assert not is_late_report(date(2025, 1, 31), date(2025, 2, 28))
    assert not is_late_report(date(2025, 3, 10), date(2025, 4, 10))
    assert not is_late_report(date(2025, 3, 10), date(2025, 3, 10))


def test_r6_1_report_after_one_month_is_late():
    assert is_late_report(date(2025, 1, 31), date(2025, 3, 1))
    assert is_late_report(date(2025, 3, 10), date(2025, 4, 11))


def test_r6_1_reported_on_is_the_servers_date():
    rules.check_reported_on(None, date(2025, 3, 1))
    rules.check_reported_on(date(2025, 3, 1), date(2025, 3, 1))
    for claimed in (date(2025, 2, 1), date(2025, 3, 2)):
        with pytest.raises(RuleViolation) as err:
            rules.check_reported_on(claimed, date(2025, 3, 1))
        assert err.value.code == "R6.1" and "2025-03-01" in err.value.detail


# --- R4.1 term, N-TERM, N-BAN -----------------------------------------------------------------

def test_r4_1_term_is_five_years():
    assert term_end(date(2025, 1, 1)) == date(2029, 12, 31)
    assert term_end(date(2024, 2, 29)) == date(2029, 2, 27)
    assert term_end(date(2023, 6, 15)) == date(2028, 6, 14)


def test_n_term_second_consecutive_term_allowed():
    check_term_limit([Term(date(2020, 1, 1), date(2024, 12, 31))], date(2025, 1, 1))


def test_n_term_third_consecutive_term_refused():
    history = [Term(date(2015, 1, 1), date(2019, 12, 31)), Term(date(2020, 1, 1), date(2024, 12, 31))]
    with pytest.raises(RuleViolation) as err:
        check_term_limit(history, date(2025, 1, 1))
    assert err.value.code == "N-TERM"


def test_n_term_no_unsourced_gap_tolerance_by_default():
    """The "a gap of up to a year still counts" reading had no source: a gap breaks the chain unless configured."""
    history = [Term(date(2015, 1, 1), date(2019, 12, 31)), Term(date(2020, 1, 1), date(2024, 12, 31))]
    check_term_limit(history, date(2025, 1, 2))  # one day of gap: a new chain
    check_term_limit(history, date(2025, 11, 1))
    with pytest.raises(RuleViolation):  # a tolerance the bureau configured (RegistrySettings.n_term_gap_days)
        check_term_limit(history, date(2025, 11, 1), gap_days=365)
    # a gap between the two earlier terms breaks their chain
    check_term_limit([Term(date(2008, 1, 1), date(2012, 12, 31)), Term(date(2015, 1, 1), date(2019, 12, 31))],
                     date(2020, 1, 1))


def test_n_term_an_early_end_counts_as_the_end():
    # resigned in 2017 (effective end), re-selected from 2020: not consecutive with the cut-short term
    history = [Term(date(2010, 1, 1), date(2014, 12, 31)), Term(date(2015, 1, 1), date(2017, 6, 30))]
    check_term_limit(history, date(2020, 1, 1))
    with pytest.raises(RuleViolation):
        check_term_limit(history, date(2017, 7, 1))


def test_n_term_one_procuratorate_level_at_a_time():
    history = [Term(date(2020, 1, 1), date(2024, 12, 31), "provincial")]
    with pytest.raises(RuleViolation) as err:
        rules.check_one_level(history, "city", date(2022, 1, 1), date(2026, 12, 31))
    assert err.value.code == "N-TERM" and "层级" in err.value.detail
    rules.check_one_level(history, "provincial", date(2022, 1, 1), date(2026, 12, 31))  # same level: not this rule
    rules.check_one_level(history, "city", date(2025, 1, 1), date(2029, 12, 31))  # after it


def test_new_term_starts_after_the_previous_one_ended():
    history = [Term(date(2020, 1, 1), date(2022, 3, 1))]  # ended early on 2022-03-01
    with pytest.raises(RuleViolation) as err:
        rules.check_new_term_start(history, date(2022, 3, 1))
    assert err.value.code == "invalid_transition" and "2022-03-01" in err.value.detail
    rules.check_new_term_start(history, date(2022, 3, 2))
    rules.check_new_term_start([], date(2000, 1, 1))


def test_n_ban_refuses_banned_person():
    with pytest.raises(RuleViolation) as err:
        rules.check_not_banned(True)
    assert err.value.code == "N-BAN"


def test_n_ban_resigned_and_dismissed_persons_are_appointable_statuses():
    """Only the permanent grounds ban (the ban table): every status of a person may start a new term."""
    for status in ("candidate", "active", "term_ended", "resigned", "dismissed"):
        rules.check_transition("任命", status, rules.APPOINTABLE)


def test_n_excl_excluded_person_cannot_be_appointed():
    rules.check_not_excluded(None)
    with pytest.raises(RuleViolation) as err:
        rules.check_not_excluded("dishonest_debtor")
    assert err.value.code == "N-EXCL" and "失信被执行人" in err.value.detail
    assert set(rules.EXCLUSION_ZH) == {g.value for g in rules.ExclusionGround}


@pytest.mark.parametrize("ground, banned", [(1, False), (2, False), (3, False), (4, True), (5, True), (6, True)])
def test_n_ban_dismissal_ground_sets_permanent_ban(ground, banned):
    assert bans_permanently(DismissalGround(ground)) is banned


# Art. 8 of the measures, items (1)-(6), as published
ART_8 = ("本人申请辞去担任的人民监督员的", "丧失中华人民共和国国籍的", "丧失行为能力的",
         "在选任中弄虚作假，提供不实材料的", "年度考核不合格的",
         "有《人民监督员选任管理办法》第七条第二款、第十条第一款所列情形的")


@pytest.mark.parametrize("ground", [1, 2, 3, 4, 5, 6])
def test_r8_1_ground_labels_are_the_measures_wording(ground):
    assert ART_8[ground - 1] == DismissalGround(ground).label + "的"


def test_r8_1_no_seventh_ground():
    with pytest.raises(ValueError):
        DismissalGround(7)


def test_r8_1_ground_5_rests_on_an_unqualified_annual_result():
    check = rules.check_ground_basis
    unqualified = rules.AppraisalResult("annual", "unqualified", "2025")
    check(5, appraisal_round_id="r", result=unqualified)
    for round_id, result in ((None, None), ("r", None), (None, unqualified),
                             ("r", rules.AppraisalResult("annual", "basically_qualified", "2025")),
                             ("r", rules.AppraisalResult("term", "unqualified", "2021–2025"))):
        with pytest.raises(RuleViolation) as err:
            check(5, appraisal_round_id=round_id, result=result)
        assert err.value.code == "R8.1"
    check(2, appraisal_round_id=None, result=None)
    with pytest.raises(RuleViolation):  # a round is the basis of ground 5 only
        check(2, appraisal_round_id="r", result=unqualified)


def test_invalid_transition_code():
    with pytest.raises(RuleViolation) as err:
        rules.check_transition("免除资格", "resigned", {rules.Status.ACTIVE})
    assert err.value.code == "invalid_transition"
    assert "已辞去" in err.value.detail


# --- R9.1 notices ------------------------------------------------------------------------------

def test_r9_1_four_notices_and_announcement():
    docs = rules.dismissal_documents(
        name="张三", employer="威海市某公司", recommending_body="环翠区某街道", procuratorate="威海市人民检察院",
        bureau="威海市司法局", ground=DismissalGround.SELECTION_FRAUD, decided_on=date(2025, 6, 1),
        certificate_no="威监证〔2025〕0001", work_card_no="WH-GZ-2025-0001")
    kinds = [n.recipient_kind for n in docs.notices]
    assert kinds == ["person", "employer", "recommending_body", "procuratorate"]
    assert [n.recipient for n in docs.notices] == ["张三", "威海市某公司", "环翠区某街道", "威海市人民检察院"]
    for notice in docs.notices:
        assert "张三" in notice.text
        assert "弄虚作假" in notice.text
        assert notice.text.startswith(notice.recipient)
    assert "威监证〔2025〕0001" in docs.notices[0].text and "WH-GZ-2025-0001" in docs.notices[0].text
    assert "公告" in docs.announcement and "张三" in docs.announcement and "第（4）项" in docs.announcement


def test_r9_1_notices_cite_the_measures_title_and_are_documents():
    docs = rules.dismissal_documents(
        name="李四", employer="某厂", recommending_body="某社区", procuratorate="威海市人民检察院",
        bureau="威海市司法局", ground=2, decided_on=date(2025, 6, 1), certificate_no=None, work_card_no=None)
    for text in [n.text for n in docs.notices] + [docs.announcement]:
        assert "《威海市人民监督员履职管理实施办法》第八条第（2）项" in text
        assert "《威海市人民监督员管理办法》" not in text
    for notice in docs.notices:
        record = notice.as_record()
        assert record["title"] and record["issued_by"] == "威海市司法局" and record["issued_on"] == "2025-06-01"
        assert record["basis"] == "《威海市人民监督员履职管理实施办法》第八条第（2）项、第九条"
    assert docs.announcement_title == "关于免除李四人民监督员资格的公告"
    assert docs.announcement.startswith(docs.announcement_title)


# --- R22.1–R22.3 ------------------------------------------------------------------------------

def test_r22_1_initial_training_due_two_months_after_decision():
    assert initial_training_due(date(2025, 1, 15)) == date(2025, 3, 15)
    assert initial_training_due(date(2024, 12, 31)) == date(2025, 2, 28)
    assert not initial_training_overdue(date(2025, 1, 15), False, date(2025, 3, 15))
    assert initial_training_overdue(date(2025, 1, 15), False, date(2025, 3, 16))
    assert not initial_training_overdue(date(2025, 1, 15), True, date(2026, 1, 1))


def test_r22_2_missed_or_failed_initial_needs_makeup():
    assert not needs_makeup([])
    assert needs_makeup([Attempt("initial", False, None)])
    assert needs_makeup([Attempt("initial", True, False)])
    assert not needs_makeup([Attempt("initial", True, False), Attempt("makeup", True, True)])
    assert not needs_makeup([Attempt("annual", False, None)])
    check_attempt_kind("initial", [])
    check_attempt_kind("makeup", [Attempt("initial", True, False)])
    with pytest.raises(RuleViolation) as err:
        check_attempt_kind("initial", [Attempt("initial", True, False)])
    assert err.value.code == "R22.2"


def test_r22_3_only_passed_initial_or_makeup_qualifies():
    assert rules.passes_initial("initial", True, True)
    assert rules.passes_initial("makeup", True, True)
    assert not rules.passes_initial("initial", True, False)
    assert not rules.passes_initial("initial", False, None)
    assert not rules.passes_initial("annual", True, True)


TODAY = date(2026, 6, 1)


def _elig(status="active", passed=True, end=date(2029, 12, 31), excluded=False):
    return eligibility(status=status, initial_passed=passed, term_end_on=end, excluded=excluded, today=TODAY)


def test_r22_3_eligible_when_active_trained_in_term():
    assert _elig() == (True, [])


@pytest.mark.parametrize("kwargs, reason", [
    ({"passed": False}, "initial_training_pending"),
    ({"status": "dismissed"}, "dismissed"),
    ({"status": "resigned"}, "resigned"),
    ({"status": "term_ended"}, "term_ended"),
    ({"end": date(2026, 5, 31)}, "term_ended"),
    ({"excluded": True}, "excluded"),
    ({"status": "candidate", "passed": False, "end": None}, "not_appointed"),
])
def test_r22_3_each_reason_makes_ineligible(kwargs, reason):
    eligible, reasons = _elig(**kwargs)
    assert not eligible
    assert reason in reasons


def test_n_excl_is_published_as_its_own_reason():
    assert event_reasons(["excluded", "not_appointed", "dismissed"]) == ["excluded", "suspended", "dismissed"]
    assert event_reasons(["initial_training_pending"]) == ["initial_training_pending"]


def test_every_eligibility_reason_fits_the_event_contract():
    from typing import get_args

    from shared.events.contracts import EligibilityReason

    produced = [r for r in rules.REASON_ZH]
    assert set(event_reasons(produced)) <= set(get_args(EligibilityReason))


def test_r5_1_number_formats():
    assert rules.format_number("威监证", 2025, 1, style="certificate") == "威监证〔2025〕0001"
    assert rules.format_number("WH-GZ", 2025, 12, style="work_card") == "WH-GZ-2025-0012"


def test_r24_1_training_formats_are_the_six_of_art_24():
    # 第二十四条：集中授课、座谈研讨、现场观摩、案例教学、实地考察学习、网络学习
    assert [rules.FORMAT_ZH[f] for f in rules.TrainingFormat] == [
        "集中授课", "座谈研讨", "现场观摩", "案例教学", "实地考察学习", "网络学习"]


def test_r21_1_term_training_is_a_kind():
    assert rules.TrainingKind("term") == rules.TrainingKind.TERM
    from typing import get_args

    from shared.events.contracts import TrainingRecorded
    assert {k.value for k in rules.TrainingKind} == set(get_args(TrainingRecorded.model_fields["kind"].annotation))


def test_r21_1_term_training_once_within_the_term():
    term = {"term_start": date(2025, 1, 1), "term_end": date(2029, 12, 31)}
    rules.check_term_training("term", date(2026, 5, 1), **term, attended_term_sessions=0)
    rules.check_term_training("annual", date(2026, 5, 1), **term, attended_term_sessions=3)
    for held_on, attended in ((date(2026, 5, 1), 1), (date(2030, 1, 1), 0), (date(2024, 12, 31), 0)):
        with pytest.raises(RuleViolation) as err:
            rules.check_term_training("term", held_on, **term, attended_term_sessions=attended)
        assert err.value.code == "R21.1"
    with pytest.raises(RuleViolation):  # not appointed: no term
        rules.check_term_training("term", date(2026, 5, 1), term_start=None, term_end=None, attended_term_sessions=0)


@pytest.mark.parametrize("kind, fmt, counts", [
    ("annual", "lecture", True), ("annual", "seminar", True), ("term", "field_study", True),
    ("annual", "online", False), ("term", "online", False),
    ("initial", "lecture", False), ("makeup", "lecture", False),
])
def test_r23_1_yearly_centralized_training(kind, fmt, counts):
    assert rules.counts_as_centralized(kind, fmt) is counts


# --- one door: the checks of a registration and of an appointment, shared by the single path and the import ---

CANDIDATE = {"phone": "13812345678", "district": "文登区", "specialties": ["法律", " 金融", "法律"],
             "today": date(2026, 1, 1), "districts": ["环翠区", "文登区"], "known_specialties": {"法律", "金融"}}


def test_check_candidate_normalizes_and_derives_gender():
    number = valid_id("37100219750101123")
    checked = rules.check_candidate(id_number=number.lower() + " ", **CANDIDATE)
    assert checked == rules.Candidate(number, "13812345678", rules.gender_of(number), "文登区", ["法律", "金融"])


@pytest.mark.parametrize(("override", "code"), [
    ({"id_number": "371002197501011230"}, "invalid_id_number"),
    ({"phone": "12345"}, "invalid_phone"),
    ({"birth_date": date(1975, 1, 2)}, "id_number_mismatch"),
    ({"gender": "female"}, "id_number_mismatch"),
    ({"district": "青岛市"}, "unknown_district"),
    ({"specialties": ["占卜"]}, "unknown_specialty"),
])
def test_check_candidate_refuses_each_bad_field(override, code):
    number = valid_id("37100219750101123")  # 17th digit 3: male
    with pytest.raises(RuleViolation) as exc:
        rules.check_candidate(**{"id_number": number, **CANDIDATE, **override})
    assert exc.value.code == code and exc.value.detail


def test_n_ban_n_excl_n_term_check_appointment_in_order():
    start = date(2026, 1, 1)
    base = {"history": [], "status": "candidate", "banned": False, "excluded_ground": None, "start": start,
            "level": "city"}
    assert rules.check_appointment(**base) == term_end(start)  # R4.1
    both = {**base, "banned": True, "excluded_ground": "criminal_penalty"}
    with pytest.raises(RuleViolation, match="N-BAN"):  # the ban is checked first
        rules.check_appointment(**both)
    with pytest.raises(RuleViolation, match="N-EXCL"):
        rules.check_appointment(**{**base, "excluded_ground": "criminal_penalty"})
    two = [Term(date(2016, 1, 1), date(2020, 12, 31)), Term(date(2021, 1, 1), date(2025, 12, 31))]
    with pytest.raises(RuleViolation, match="N-TERM"):
        rules.check_appointment(**{**base, "history": two})
    with pytest.raises(RuleViolation, match="invalid_transition"):
        rules.check_appointment(**{**base, "history": [Term(date(2022, 1, 1), date(2026, 12, 31))]})


def test_r5_1_a_typed_number_already_issued_is_refused():
    rules.check_number_unused("certificate", "威监证〔2026〕0001", False)
    with pytest.raises(RuleViolation) as exc:
        rules.check_number_unused("work_card", "WH-GZ-2026-0001", True)
    assert exc.value.code == "duplicate_work_card_no" and "R5.1" in exc.value.detail
