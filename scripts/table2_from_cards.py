"""The paper's Table 2 assembled from the evaluations stored in model cards, without re-running them.

Each shipped model's card holds what `blindsr-gym evaluate --card-key KEY` measured for it (records per
method, dataset and kernel, and the exact command). This script merges those records into one table,
methods as rows and datasets as columns, and checks that a method measured by several cards (bicubic,
say) got the same figures in each (the same images and kernels must give the same numbers). A file
written by `blindsr-gym evaluate --json` (a method without a card, e.g. `fixed`) can stand beside the
cards.

    python scripts/table2_from_cards.py renderers/weights/amnet_x4.json agents/weights/kenet_x4.json \
        renderers/weights/dan_x4.json runs/fixed_2.2.eval.json --key gaussian8 --out docs/table2_gaussian8

Table 4 compares two renderers' `gt` rows, which would clash: `--rename CARD:METHOD=NEW` relabels one
card's method (e.g. `--rename renderers/weights/amnet_adain_x4.json:gt=gt-adain`).

Writes OUT.md (the table, then the source commands) and OUT.json (the command of this script, the
merged records and summary, and each card's command), and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from blindsr_gym.evaluate import summarize, to_markdown

ORDER = ("bicubic", "gt", "amgan-gt", "fixed", "kenet", "dan", "amnet-rl", "amnet-rl-ens", "amgan-rl")


def merge(cards: list[tuple[str, dict]], key: str, tol: float = 1e-6,
          rename: dict[tuple[str, str], str] | None = None) -> tuple[list[dict], list[str], list[str]]:
    """``(records, metrics, commands)`` merged over ``cards`` (``(name, card)`` pairs) under evaluation[key];
    ``rename`` maps ``(card name, method)`` to the row's label."""
    rename = rename or {}
    records: dict[tuple[str, str, str], dict] = {}
    metrics: list[str] | None = None
    commands = []
    for name, card in cards:
        # a model card holds its evaluations under evaluation[key]; `evaluate --json` output is one itself
        ev = card if "records" in card and "command" in card else card.get("evaluation", {}).get(key)
        if ev is None:
            raise ValueError(f"{name}: no evaluation {key!r} in its card (has: {sorted(card.get('evaluation', {}))})")
        commands.append(ev["command"])
        for r in ev["records"]:
            r = dict(r, method=rename.get((name, r["method"]), r["method"]))
            these = [m for m in ("psnr", "ssim", "niqe") if m in r]
            metrics = these if metrics is None else [m for m in metrics if m in these]
            k = (r["method"], r["dataset"], r["kernel"])
            if k in records:
                for m in these:
                    a, b = records[k].get(m), r[m]
                    if a is not None and not math.isclose(a, b, rel_tol=tol, abs_tol=tol):
                        raise ValueError(f"{name}: {k} {m} = {b} differs from another card's {a}")
            else:
                records[k] = r
    if not records:
        raise ValueError("no records in the cards")
    rank = {m: i for i, m in enumerate(ORDER)}
    out = sorted(records.values(), key=lambda r: rank.get(r["method"], len(ORDER)))
    return out, metrics or [], commands


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cards", nargs="+",
                   help="model card .json files (next to the shipped .safetensors) or `evaluate --json` files")
    p.add_argument("--key", default="gaussian8", help="the evaluation stored under this card key")
    p.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
    p.add_argument("--rename", action="append", default=[], metavar="CARD:METHOD=NEW",
                   help="label CARD's METHOD rows NEW (two renderers' gt rows side by side)")
    a = p.parse_args(argv)
    rename = {}
    for spec in a.rename:
        card, sep, rest = spec.rpartition(":")
        method, eq, new = rest.partition("=")
        if not (sep and eq and card in a.cards and method and new):
            raise SystemExit(f"--rename {spec!r}: expected CARD:METHOD=NEW with CARD one of the cards given")
        rename[(card, method)] = new
    cards = []
    for c in a.cards:
        path = Path(c)
        if not path.is_file():
            raise SystemExit(f"no model card at {path}")
        cards.append((c, json.loads(path.read_text())))
    records, metrics, commands = merge(cards, a.key, rename=rename)
    md = to_markdown(records, metrics)
    md += "\nMeasured by:\n\n" + "\n".join(f"- `{c}`" for c in commands) + "\n"
    out = Path(a.out)
    if out.suffix in (".md", ".json"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    md_path, json_path = (out.parent / (out.name + ext) for ext in (".md", ".json"))  # keeps "sigma1.8"
    md_path.write_text(md)
    command = "python scripts/table2_from_cards.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    json_path.write_text(json.dumps({"command": command, "key": a.key, "sources": commands,
                                     "summary": summarize(records, metrics), "records": records}, indent=2) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
