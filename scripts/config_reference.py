"""Rewrite the README's config reference table from the parameter classes (`hip3.params`).

Run after adding or changing a parameter: `.venv/bin/python scripts/config_reference.py`.
tests/service/test_config.py fails while the README and the declarations disagree.
"""

from __future__ import annotations

from pathlib import Path

from hip3.service.config import README_TABLE_END, README_TABLE_START, reference_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    head, sep, rest = text.partition(README_TABLE_START)
    if not sep:
        raise SystemExit(f"{README}: marker {README_TABLE_START!r} not found")
    _, sep, tail = rest.partition(README_TABLE_END)
    if not sep:
        raise SystemExit(f"{README}: marker {README_TABLE_END!r} not found")
    README.write_text(
        head + README_TABLE_START + "\n" + reference_table() + "\n" + README_TABLE_END + tail,
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
