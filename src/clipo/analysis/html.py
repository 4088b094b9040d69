"""HTML renderings of the Markdown that the tables, the significance tables and the report are written in.

Snakemake's report viewer shows images, HTML and PDF inline and offers anything else (CSV, Markdown) as a
download, so each of those Markdown files gets a self-contained HTML twin: styles inline, images
embedded as data URIs (the viewer opens an entry from a data URI, where relative links resolve nowhere).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown as markdown_lib

from clipo.records import atomic_write

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 72rem;
       padding: 0 1rem; line-height: 1.45; color: #1f2328; }
table { border-collapse: collapse; margin: 0.8rem 0 1.2rem; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.55rem; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
td, th { font-variant-numeric: tabular-nums; }
code { background: #f6f8fa; padding: 0 0.2rem; border-radius: 3px; font-size: 0.88em; }
img { max-width: 100%; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; border-bottom: 1px solid #d0d7de; } h3 { font-size: 1.1rem; }
"""

_IMAGE = re.compile(r'(<img [^>]*src=")([^":]+\.png)(")')


def _embed_images(body: str, base: Path) -> str:
    """Relative PNG links (resolved against ``base``) become data URIs; a missing file keeps its link."""

    def inline(match: re.Match) -> str:
        png = base / html.unescape(match.group(2))
        if not png.is_file():
            return match.group(0)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    return _IMAGE.sub(inline, body)


def page(title: str, text: str, images_from: str | Path | None = None) -> str:
    """A whole HTML document from Markdown ``text`` (tables and inline HTML such as ``<u>`` allowed);
    ``images_from``: the folder relative image links are read from, to embed them."""
    body = markdown_lib.markdown(text, extensions=["tables"], output_format="html")
    if images_from is not None:
        body = _embed_images(body, Path(images_from))
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_page(path: str | Path, title: str, text: str, images_from: str | Path | None = None) -> Path:
    """Write ``page(...)`` atomically to ``path``."""
    document = page(title, text, images_from)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(document, encoding="utf-8"))
