"""RFC 8785 (JCS) canonical JSON of draw receipts: the RFC's examples, the reference library, no floats."""

import ast
import json
import subprocess
import sys
from enum import IntEnum
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from services.selection.draw import jcs
from services.selection.draw.jcs import MAX_SAFE_INTEGER, canonical

JCS_PATH = Path(jcs.__file__)


def test_rfc8785_3_2_3_sorting_of_object_properties():
    # RFC 8785 §3.2.3: the keys sort by UTF-16 code units; the emoji (U+D83D U+DE00) sorts before U+FB33
    source = r"""{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    }"""
    out = canonical(json.loads(source))
    assert out == (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    keys = list(json.loads(out))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert keys != sorted(keys)  # Python's code point order puts U+FB33 before U+1F600


def test_rfc8785_3_2_2_string_serialization_example_without_its_numbers():
    # RFC 8785 §3.2.2 sample input, its "numbers" (floats, refused here) left out
    source = r"""{
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"""
    expected = r"""{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}"""
    assert canonical(json.loads(source)) == expected.encode("utf-8")


def test_rfc8785_3_2_2_2_escapes_only_quote_backslash_and_controls():
    every_control = "".join(chr(i) for i in range(0x20))
    assert canonical(every_control) == (
        b'"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f'
        b'\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d'
        b'\\u001e\\u001f"'
    )
    assert canonical('"\\/') == b'"\\"\\\\/"'
    # DEL, U+2028, non-ASCII and astral characters are written as they are, in UTF-8
    assert canonical("\x7f\u2028é监督😀") == '"\x7f\u2028é监督😀"'.encode()


def test_rfc8785_literals_integers_and_no_whitespace():
    assert canonical(None) == b"null" and canonical(True) == b"true" and canonical(False) == b"false"
    safe = [0, -1, 42, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]
    assert canonical(safe) == b"[0,-1,42,9007199254740991,-9007199254740991]" == rfc8785.dumps(safe)
    assert canonical({"b": [1, {"d": [], "c": {}}], "a": "x"}) == b'{"a":"x","b":[1,{"c":{},"d":[]}]}'
    assert canonical((1, "two")) == canonical([1, "two"]) == b'[1,"two"]'

    class Round(IntEnum):
        FIRST = 1

    assert canonical({"round": Round.FIRST}) == b'{"round":1}'


@pytest.mark.parametrize("value", [1.0, 0.5, float("nan"), float("inf"), [1, 2.5], {"weight": 4.0}])
def test_floats_are_refused(value):
    with pytest.raises(TypeError, match="float"):
        canonical(value)


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64, [10**20]])
def test_integers_outside_the_i_json_safe_range_are_refused(value):
    with pytest.raises(ValueError):
        canonical(value)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", ["\ud83d"], {"\udc00": 1}, {"k": "\ud800"}])
def test_lone_surrogates_are_refused(value):
    with pytest.raises(ValueError, match="surrogate"):
        canonical(value)


@pytest.mark.parametrize("value", [{1: "a"}, {None: 1}, b"bytes", {1, 2}, object()])
def test_non_json_types_are_refused(value):
    with pytest.raises(TypeError):
        canonical(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER) | st.text(),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_canonical_equals_the_rfc8785_reference_implementation(value):
    out = canonical(value)
    assert out == rfc8785.dumps(value)
    assert json.loads(out) == value
    assert canonical(json.loads(out)) == out


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(st.characters(min_codepoint=0xE000, max_codepoint=0x1F64F)), st.integers(0, 9)))
def test_keys_above_the_bmp_sort_by_utf16_like_the_reference(value):
    assert canonical(value) == rfc8785.dumps(value)


def test_jcs_imports_only_the_standard_library():
    tree = ast.parse(JCS_PATH.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_jcs_runs_under_python_dash_s_without_site_packages():
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('jcs', {str(JCS_PATH)!r})\n"
        "jcs = importlib.util.module_from_spec(spec); spec.loader.exec_module(jcs)\n"
        "sys.stdout.buffer.write(jcs.canonical({'b': [1, None], 'a': '\\u20ac'}))\n"
    )
    done = subprocess.run([sys.executable, "-S", "-I", "-c", script], capture_output=True, timeout=60, check=True)
    assert done.stdout == '{"a":"€","b":[1,null]}'.encode()
