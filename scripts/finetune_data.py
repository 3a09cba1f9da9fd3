#!/usr/bin/env python3
"""Writes the fine-tuning dataset of the tests and the demo: the GNU GPL version 3, as shipped by
Debian's base-files package (/usr/share/common-licenses/GPL-3, on every Debian machine), cut into
examples of at most MAX_CHARS characters (capitals count three times) at word boundaries, one JSON object per line.

Every tenth example is held out. The output is committed
(crates/lm/tests/fixtures/finetune/{train,heldout}.jsonl); run this again only to change it.
The license permits verbatim copies of its text.
"""

import argparse
import hashlib
import json
import os
import re

MAX_CHARS = 160


def cost(s: str) -> int:
    """Characters, with capitals counted three times: the models' tokenizer, learned on
    mostly lower-case text, spends about three times the tokens on them."""
    return len(s) + 2 * sum(c.isupper() for c in s)


def examples(text: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        words = para.split()
        cur = ""
        for w in words:
            if cur and cost(cur) + 1 + cost(w) > MAX_CHARS:
                out.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}" if cur else w
        if len(cur) >= 20:
            out.append(cur)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("--out", default="crates/lm/tests/fixtures/finetune")
    a = ap.parse_args()
    raw = open(a.source, "rb").read()
    ex = examples(raw.decode("utf-8"))
    os.makedirs(a.out, exist_ok=True)
    train = [e for i, e in enumerate(ex) if i % 10 != 9]
    held = [e for i, e in enumerate(ex) if i % 10 == 9]
    for name, rows in (("train", train), ("heldout", held)):
        with open(os.path.join(a.out, f"{name}.jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps({"text": r}) + "\n")
    print(f"{a.source} (sha256 {hashlib.sha256(raw).hexdigest()}): "
          f"{len(train)} train + {len(held)} held-out examples")


if __name__ == "__main__":
    main()
