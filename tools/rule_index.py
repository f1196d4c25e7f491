"""The rule index (docs/RULE_INDEX.md), generated from the code: rule id → code → tests → error codes.

    python -m tools.rule_index docs/RULE_INDEX.md        # write it (make docs)
    python -m tools.rule_index --check docs/RULE_INDEX.md  # exit 1 when it is out of date

The rules themselves (id, rule, owner) are read from docs/RULES.md, the repository's copy of the
rule catalogue. A rule is *enforced in* every function or class of services/ and shared/ whose
source cites its id (comment, docstring or string); *tested by* every test function whose name
carries it (`test_r10_1_…`, `…_r10_1`) or whose source cites it; its *error codes* are the stable
problem+json codes refused with in the functions that cite it (the first string argument of a
`ProblemError`, `Conflict`, `Unprocessable`, `Forbidden` or a service's `RuleViolation`).
Migrations are left out (they cite the rule their table serves, not where it is held).
Rules with no code or no test are listed at the end: they are what an auditor asks about first.
"""

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULE_ROW = re.compile(r"^\| ((?:R\d+\.\d+)|(?:N-[A-Z]+)) \| (.+?) \| (.+?) \| (.+) \|\s*$")
CHAPTER = re.compile(r"^## (.+)$")
CODE = re.compile(r"^[A-Za-z][\w.\-]*$")
REFUSALS = {"ProblemError", "Conflict", "Unprocessable", "Forbidden", "RuleViolation"}


@dataclass
class Rule:
    id: str
    text: str
    owner: str
    chapter: str
    code: set[str] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)
    error_codes: set[str] = field(default_factory=set)


def read_rules(catalogue: Path) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    chapter = ""
    for line in catalogue.read_text(encoding="utf-8").splitlines():
        if heading := CHAPTER.match(line):
            chapter = heading.group(1)
        elif row := RULE_ROW.match(line):
            rule_id, text, owner, _behaviour = row.groups()
            rules[rule_id] = Rule(rule_id, text.strip(), owner.strip(), chapter)
    return rules


def _id_pattern(rule_ids) -> re.Pattern:
    # longest first, and not followed by a digit: R1.1 must not match inside R1.10
    alternatives = "|".join(re.escape(r) for r in sorted(rule_ids, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])({alternatives})(?![\d])")


def _test_name_pattern(rule_id: str) -> re.Pattern:
    slug = rule_id.lower().replace(".", "_").replace("-", "_")
    return re.compile(rf"(?:^|_){re.escape(slug)}(?:_|$)")


def _definitions(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """(qualified name, node) of every function and class, innermost last."""
    found: list[tuple[str, ast.AST]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                found.append((name, child))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _refusal_codes(node: ast.AST) -> set[str]:
    codes = set()
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name not in REFUSALS:
            continue
        first = next((a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), None)
        if first is not None and CODE.match(first):
            codes.add(first)
    return codes


def _sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)


def scan(rules: dict[str, Rule]) -> None:
    cites = _id_pattern(rules)
    names = {rule_id: _test_name_pattern(rule_id) for rule_id in rules}
    for folder, is_test in (("services", False), ("shared", False), ("tests", True)):
        for path in _sources(folder):
            text = path.read_text(encoding="utf-8")
            if not cites.search(text) and not is_test:
                continue
            tree = ast.parse(text)
            lines = text.splitlines()
            relative = path.relative_to(ROOT).as_posix()
            module_cited = set(cites.findall(text))
            for name, node in _definitions(tree):
                source = "\n".join(lines[node.lineno - 1:node.end_lineno])
                cited = set(cites.findall(source))
                if is_test:
                    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.name.startswith("test"):
                        continue
                    cited |= {r for r, pattern in names.items() if pattern.search(node.name)}
                    for rule_id in cited:
                        rules[rule_id].tests.add(f"{relative}::{name}")
                elif cited:
                    codes = _refusal_codes(node)
                    for rule_id in cited:
                        rules[rule_id].code.add(f"{relative}:{name}")
                        rules[rule_id].error_codes |= codes
            if not is_test:
                # a module that cites a rule only in its docstring or comments still enforces it
                placed = {r for r in module_cited if any(c.startswith(f"{relative}:") for c in rules[r].code)}
                for rule_id in module_cited - placed:
                    rules[rule_id].code.add(relative)


def _cell(items: set[str], limit: int = 8) -> str:
    ordered = sorted(items)
    shown = [f"`{item}`" for item in ordered[:limit]]
    if len(ordered) > limit:
        shown.append(f"… {len(ordered) - limit} more")
    return "<br>".join(shown) or "—"


def render(rules: dict[str, Rule]) -> str:
    out = [
        "# Rule index",
        "",
        "Generated by `python -m tools.rule_index docs/RULE_INDEX.md` (`make docs`) from the code; a test keeps it",
        "current. Each rule of `docs/RULES.md` (the catalogue of the Weihai measures, 2024) with the functions that",
        "cite it, the tests that name or cite it, and the problem+json / event code that carries its id.",
        "",
    ]
    chapter = None
    for rule in rules.values():
        if rule.chapter != chapter:
            chapter = rule.chapter
            out += ["", f"## {chapter}", "", "| id | rule | owner | enforced in | tested by | error code |",
                    "|---|---|---|---|---|---|"]
        text = rule.text if len(rule.text) <= 90 else rule.text[:88] + "…"
        out.append(f"| {rule.id} | {text} | {rule.owner} | {_cell(rule.code)} | {_cell(rule.tests)} | "
                   f"{_cell(rule.error_codes)} |")
    untested = [r.id for r in rules.values() if not r.tests]
    uncoded = [r.id for r in rules.values() if not r.code]
    out += ["", "## Gaps", "",
            f"- cited by no code: {', '.join(uncoded) or 'none'}",
            f"- named or cited by no test: {', '.join(untested) or 'none'}", ""]
    return "\n".join(out)


def build() -> str:
    rules = read_rules(ROOT / "docs" / "RULES.md")
    scan(rules)
    return render(rules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the code")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run make docs", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
