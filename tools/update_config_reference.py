#!/usr/bin/env python3
"""Regenerate the config reference in README.md from the dataclass help texts."""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from essa_hpc.config import describe  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def render(text: str) -> str:
    return re.sub(f"{START}.*?{END}", f"{START}\n{describe()}{END}", text, flags=re.S)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    print(f"updated {README}")
