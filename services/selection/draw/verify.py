"""Stand-alone draw verifier: `python -m services.selection.draw.verify receipt.json [previous.json]`.

Needs only the standard library and the receipt file (as served by GET /draws/{id}/receipt).
Recomputes the bureau commitment, every pool bucket's hash, the snapshot and params hashes, the
seed, the draw order (the people to contact and the alternates), the receipt hash and the
contact-log chain; with a second file (the previous receipt) it also
checks the link of the receipt chain. Exit code 0 when every check passes, 1 otherwise, 2 on usage.
"""

import json
import sys

from services.selection.draw.algorithm import verify_receipt


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(argv[0], encoding="utf-8") as f:
            receipt = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"cannot read receipt: {exc}", file=sys.stderr)
        return 2
    result = verify_receipt(receipt)
    if len(argv) == 2:
        with open(argv[1], encoding="utf-8") as f:
            previous = json.load(f)
        linked = previous.get("receipt_hash") == receipt.get("prev_receipt_hash")
        result["checks"]["chain_link"] = {"ok": linked, "detail": "previous receipt file"}
        result["ok"] = result["ok"] and linked
    print(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
