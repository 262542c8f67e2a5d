"""The About page: the model card (Markdown next to the model) rendered into the page.

A small, escaping Markdown subset is rendered here rather than with a Markdown library:
the card is the project's own file, and an escaping-first renderer of exactly the syntax
it uses (headings, lists, tables, bold, code) cannot let raw HTML through.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

__all__ = ["STATIC", "about_page", "markdown_to_html"]

STATIC = Path(__file__).parent / "static"


def markdown_to_html(text: str) -> str:
    """A small, escaping Markdown subset (headings, lists, tables, bold, code, paragraphs)."""
    out: list[str] = []
    in_list = in_table = False
    para: list[str] = []

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        return re.sub(r"`(.+?)`", r"<code>\1</code>", s)

    def flush() -> None:
        nonlocal in_list, in_table
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False
        if in_table:
            out.append("</tbody></table>")
            in_table = False

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            flush()
        elif m := re.match(r"(#{1,4})\s+(.*)", stripped):
            flush()
            level = len(m.group(1)) + 1  # the page has its own h1
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            if para:
                flush()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(stripped[2:])}</li>")
        elif stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if not in_table:
                flush()
                out.append(
                    "<table><thead><tr>"
                    + "".join(f"<th>{inline(c)}</th>" for c in cells)
                    + "</tr></thead><tbody>"
                )
                in_table = True
            else:
                out.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells) + "</tr>")
        elif in_list and line.startswith("  "):
            out[-1] = out[-1][: -len("</li>")] + " " + inline(stripped) + "</li>"
        else:
            para.append(stripped)
    flush()
    return "\n".join(out)


def about_page(card: Path) -> str:
    template = (STATIC / "about.html").read_text(encoding="utf-8")
    body = (
        markdown_to_html(card.read_text(encoding="utf-8"))
        if card.is_file()
        else ("<p>No model card was found next to the model.</p>")
    )
    return template.replace("<!--MODEL_CARD-->", body)
