"""The stand-alone verifier: standard library only, ok on a good receipt, fails on a tampered one (R11.1)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

from services.selection.draw import algorithm as alg
from tests.unit.selection.test_draw_algorithm import people, receipt_for

ROOT = Path(__file__).resolve().parents[3]
DRAW_DIR = ROOT / "services" / "selection" / "draw"


def run_verifier(*files: Path) -> subprocess.CompletedProcess:
    # -S: no site-packages at all, so any non-stdlib import would fail here
    return subprocess.run([sys.executable, "-S", "-m", "services.selection.draw.verify", *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_r11_1_verifier_accepts_a_good_receipt_and_rejects_a_tampered_one(tmp_path):
    receipt = receipt_for(people(30))
    good = tmp_path / "receipt.json"
    good.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    ok = run_verifier(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True

    local = receipt["order"]["local"]
    local[0], local[1] = local[1], local[0]
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(receipt), encoding="utf-8")
    failed = run_verifier(bad)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["checks"]["order"]["ok"] is False


def test_r11_1_verifier_without_site_packages_recomputes_a_draw_over_2000_people(tmp_path):
    """python -S has no `cryptography`: the reference AES recomputes the service's OpenSSL order."""
    receipt = receipt_for(people(2_000, districts=("环翠区", "文登区", "荣成市")), alternates=10,
                          need={"local": 2, "cross": 1})
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    result = run_verifier(path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert checks["order"]["ok"] and checks["alg"]["detail"].startswith(alg.ALG)
    assert len(receipt["order"]["local"]) == 12 and len(receipt["order"]["cross"]) == 11


def test_r11_1_verifier_checks_the_chain_link_with_the_previous_receipt(tmp_path):
    first = receipt_for(people(10))
    snapshot, buckets = alg.make_pool(people(10), chain_head=first["receipt_hash"], year=2026)
    second = alg.build_receipt(
        draw_id="d2", request_id="r2", round_no=1, snapshot=snapshot, buckets=buckets,
        params={"district": "环翠区", "need": {"local": 2, "cross": 1}}, accepted_at="2026-01-06T00:00:00+00:00",
        commitments={"bureau": alg.commitment("cd" * 32), "procuratorate": None}, bureau_nonce="cd" * 32,
        procuratorate_nonce=None, procuratorate_nonce_reason="recorded by the bureau",
        beacon={"source": "lottery", "round": "2026-001", "value": "01 02 03"},
        prev_receipt_hash=first["receipt_hash"], drawn_at="2026-01-06T00:00:00+00:00")
    second["buckets"] = buckets
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(first)), b.write_text(json.dumps(second))
    assert run_verifier(b, a).returncode == 0
    assert run_verifier(a, b).returncode == 1


def optional_imports(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside `try: ... except ImportError:` (a fast path, not a need)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def test_r11_1_draw_package_imports_only_the_standard_library():
    allowed_local = {"services", "services.selection", "services.selection.draw",
                     "services.selection.draw.algorithm"}
    for path in [DRAW_DIR / "algorithm.py", DRAW_DIR / "aes.py", DRAW_DIR / "verify.py", DRAW_DIR / "__init__.py",
                 ROOT / "services" / "__init__.py", ROOT / "services" / "selection" / "__init__.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        optional = optional_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name in allowed_local or top == "__future__", (path, name)
