"""The README stays a front door (issue 21): short, and every page it links to is there."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_under_150_lines() -> None:
    assert len(README.splitlines()) < 150


def test_every_file_the_readme_links_to_exists() -> None:
    # GIVEN the README's relative links (the docs pages, folders) THEN each names a file or folder of the repository
    links = {target.split("#", 1)[0] for target in re.findall(r"\]\(([^)]+)\)", README)
             if "://" not in target and not target.startswith("#")}
    assert {link for link in links if not (REPO / link).exists()} == set()
    assert "docs/index.md" in links
