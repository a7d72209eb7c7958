"""Storing an evaluation in the model cards of the checkpoints it evaluated (``--card-key``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..fileio import write_text


def _update_card(path: Path, key: str, result: dict) -> None:
    """Store ``result`` (summary, records, command) in the model card next to ``path`` under evaluation[key]."""
    card_path = Path(path).with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    keep = ("command", "kernels", "device", "wall_s", "method_s", "summary", "records")
    card.setdefault("evaluation", {})[key] = {k: result[k] for k in keep if k in result}
    write_text(card_path, json.dumps(card, indent=2) + "\n")
