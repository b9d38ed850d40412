"""The documentation: the site builds from docs/ with warnings as errors (broken links and
anchors, pages left out of the navigation, docstrings mkdocstrings cannot read), the README
stays a short entry point, and every relative link in the README and the pages resolves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a link in a code example is not a link)."""
    return "\n".join(part for i, part in enumerate(re.split(r"^```.*$", text, flags=re.M))
                     if i % 2 == 0)  # fmt: skip


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # another site, or a heading of the same page (mkdocs checks anchors)
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.is_file():
            broken.append(f"{page.relative_to(ROOT)}: {target}")
    return broken


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-5000:]
    assert (tmp_path / "index.html").is_file()
    api = (tmp_path / "api" / "costs.html").read_text()
    assert "doc-function" in api, "the API reference rendered no function from the docstrings"


def test_readme_is_a_short_entry_point():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move sections into docs/"


def test_every_relative_link_points_at_a_file():
    readmes = [README, ROOT / "deployments" / "README.md"]
    broken = [link for page in readmes + PAGES for link in _broken_links(page)]
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_readme_links_every_page_of_the_navigation():
    def pages(nav):
        for entry in nav:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from pages(value) if isinstance(value, list) else [value]

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    linked = set(LINK.findall(README.read_text()))
    missing = [page for page in pages(config["nav"])
               if page != "index.md" and not page.startswith("api/")
               and f"docs/{page}" not in linked]  # fmt: skip
    assert not missing, f"README.md's 'Where to go next' does not link {missing}"


def test_the_overview_page_carries_the_readmes_two_commands():
    def commands(text: str) -> str:
        section = text.split("## Two commands for a fresh machine", 1)[1]
        return section.split("```bash", 1)[1].split("```", 1)[0]

    overview = (ROOT / "docs" / "index.md").read_text()
    assert commands(overview) == commands(README.read_text())
