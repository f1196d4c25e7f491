"""The witness rule of shared/audit_watch.py: an audit chain's published head only moves forward."""

from shared.audit_watch import Head, judge

H1, H2 = "a" * 64, "b" * 64


def test_the_first_head_of_a_service_is_taken():
    assert judge("registry", None, Head(0, "0" * 64)).action == "first"
    assert judge("registry", None, Head(7, H1)).action == "first"


def test_a_higher_seq_raises_the_witnessed_head():
    # whether its chain extends the witnessed head is not checked (it needs the producer's rows)
    decision = judge("registry", Head(5, H1), Head(6, H2))
    assert (decision.action, decision.alarm) == ("raise", None)


def test_the_same_head_again_is_fine():
    assert judge("registry", Head(5, H1), Head(5, H1)).action == "same"


def test_a_lower_seq_is_a_truncation():
    decision = judge("finance", Head(10, H1), Head(8, H2))
    assert decision.action == "alarm"
    assert decision.alarm == (f"audit chain of finance went back: witnessed seq 10 hash {H1}, now seq 8 hash {H2} "
                              "(newest entries deleted)")


def test_the_same_seq_with_another_hash_is_a_rewrite():
    decision = judge("casework", Head(10, H1), Head(10, H2))
    assert decision.action == "alarm"
    assert decision.alarm.startswith("audit chain of casework went back: witnessed seq 10 hash ")
    assert decision.alarm.endswith("(entry rewritten)")


def test_an_empty_chain_after_a_witnessed_head_is_a_truncation():
    assert judge("selection", Head(3, H1), Head(0, "0" * 64)).action == "alarm"
