"""The files a new user reads first agree with each other: license, citation, version and links."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PAPER_TITLE = "CLIPO: Contrastive Learning in Policy Optimization Generalizes RLVR"


def test_license_file_citation_and_pyproject_name_the_same_license_and_version():
    assert PYPROJECT["license"]["text"] == "Apache-2.0"
    assert "Apache License" in (REPO / "LICENSE").read_text() and "Version 2.0" in (REPO / "LICENSE").read_text()
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["license"] == PYPROJECT["license"]["text"]
    assert citation["version"] == PYPROJECT["version"]
    assert "Apache License 2.0" in (REPO / "README.md").read_text()


def test_the_citation_references_the_paper_with_its_nine_authors():
    (paper,) = yaml.safe_load((REPO / "CITATION.cff").read_text())["references"]
    assert paper["title"] == PAPER_TITLE
    assert [a["family-names"] for a in paper["authors"]][:2] == ["Cui", "Cheng"] and len(paper["authors"]) == 9
    assert PAPER_TITLE in (REPO / "README.md").read_text()


DOCS = ("*.md", "docs/*.md", "containers/**/*.md", "results/paper/*.md")
"""The hand-written Markdown files (generated reports under results/<run set>/ are left out)."""


def test_every_relative_link_of_the_docs_exists_and_none_points_at_the_paper_outside():
    broken = []
    for doc in sorted({d for pattern in DOCS for d in REPO.glob(pattern)}):
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            path = target.split("#")[0]
            if path and not re.match(r"[a-z]+:", path) and not (doc.parent / path).exists():
                broken.append(f"{doc.relative_to(REPO)} → {target}")
        if "clipo-paper.md" in text:
            broken.append(f"{doc.relative_to(REPO)} → the paper's markdown, which is not in the repository")
    assert broken == []
