"""docs/RULE_INDEX.md is generated from the code (tools/rule_index.py) and kept current."""

from tools import rule_index


def test_rule_index_is_current():
    on_disk = (rule_index.ROOT / "docs" / "RULE_INDEX.md").read_text(encoding="utf-8")
    assert on_disk == rule_index.build(), "docs/RULE_INDEX.md is out of date: run make docs"


def test_every_catalogued_rule_is_indexed_with_its_code_tests_and_codes():
    rules = rule_index.read_rules(rule_index.ROOT / "docs" / "RULES.md")
    assert {"R2.1", "R10.1", "R17.1", "R42.1", "N-TERM"} <= set(rules)
    rule_index.scan(rules)
    lead_time = rules["R10.1"]
    assert "shared/lead_time.py" in {c.partition(":")[0] for c in lead_time.code}
    assert any("r10_1" in t for t in lead_time.tests)
    assert "R10.1" in lead_time.error_codes


def test_a_test_name_carries_a_rule_id_only_at_word_boundaries():
    pattern = rule_index._test_name_pattern("R1.1")
    assert pattern.search("test_r1_1_something") and pattern.search("test_it_holds_r1_1")
    assert not pattern.search("test_r1_10_other") and not pattern.search("test_r11_1")
