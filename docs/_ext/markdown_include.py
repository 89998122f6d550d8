"""``.. markdown-include:: contract.md``: a Markdown file of this repository as reST.

docs/contract.md stays the single source of the public contract (the tests cite it by that
path); this directive converts it when the docs are built, so nothing is copied.  It reads
the small subset of Markdown the contract uses and nothing more:

* ATX headings (``#``, ``##``, ``###``); the first one becomes the page title;
* paragraphs, ``-`` bullet lists (continuation lines indented), fenced code blocks;
* pipe tables with a ``|---|`` separator row (rendered as ``list-table``);
* inline ``code``, ``**bold**``, ``*emphasis*`` and ``[text](target)`` links, which must point
  inside the repository (they become plain text: the docs link to nothing outside).

Anything else raises an error naming the line, so that a change to the contract that this
converter does not understand fails the (warnings-as-errors) build instead of rendering
wrongly.  The converted reST can be inspected with ``python docs/_ext/markdown_include.py
docs/contract.md``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
BULLET = re.compile(r"^- (.*)$")
TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
HEADING_CHARS = "=-~^\"'"
INLINE = re.compile(r"(`+)(.+?)\1|\*\*(.+?)\*\*|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"
                    r"|\[([^\]]+)\]\(([^)]+)\)")
#: characters reST treats as markup outside literals
RST_SPECIAL = re.compile(r"([\\*`|_])")


class MarkdownError(ValueError):
    pass


def _escape(text: str) -> str:
    return RST_SPECIAL.sub(r"\\\1", text)


def inline(text: str, where: str = "") -> str:
    """One line (or table cell) of Markdown inline markup as reST inline markup."""
    out, pos = [], 0
    for m in INLINE.finditer(text):
        out.append(_escape(text[pos:m.start()]))
        code, bold, emph, link_text, target = m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
        if code is not None:
            piece = f"``{code.strip()}``" if code.strip() else "`` ``"
        elif bold is not None:
            piece = f"**{_escape(bold)}**"
        elif emph is not None:
            piece = f"*{_escape(emph)}*"
        else:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                raise MarkdownError(f"{where}: link to {target!r} leaves the repository; "
                                    "the docs link to nothing outside it")
            piece = inline(link_text, where)
        # reST inline markup must be delimited by whitespace or punctuation
        before = text[m.start() - 1] if m.start() > 0 else " "
        after = text[m.end()] if m.end() < len(text) else " "
        if before.isalnum():
            piece = "\\ " + piece
        if after.isalnum():
            piece = piece + "\\ "
        out.append(piece)
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    """A pipe-table row's cells; a ``|`` inside inline code does not split."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    cells, cell, in_code = [], [], False
    for ch in line:
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(cell).strip())
            cell = []
        else:
            cell.append(ch)
    cells.append("".join(cell).strip())
    return cells


def convert(markdown: str, source: str = "<markdown>") -> list[str]:
    """The reST lines for ``markdown`` (see the module docstring for the subset read)."""
    lines = markdown.splitlines()
    out: list[str] = []
    levels: dict[int, str] = {}
    i = 0

    def where(k):
        return f"{source}:{k + 1}"

    def blank():
        if out and out[-1] != "":
            out.append("")

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            blank()
            i += 1
            continue
        if m := HEADING.match(line):
            depth, title = len(m.group(1)), inline(m.group(2), where(i))
            if depth not in levels:
                if len(levels) >= len(HEADING_CHARS):
                    raise MarkdownError(f"{where(i)}: too many heading levels")
                levels[depth] = HEADING_CHARS[len(levels)]
            blank()
            out += [title, levels[depth] * max(len(title), 4), ""]
            i += 1
            continue
        if m := FENCE.match(stripped):
            lang = m.group(1) or "text"
            body, i = [], i + 1
            while i < len(lines) and not FENCE.match(lines[i].strip()):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise MarkdownError(f"{where(i - 1)}: unterminated code block")
            blank()
            out += [f".. code-block:: {lang}", ""] + [f"   {b}" if b else "" for b in body] + [""]
            i += 1
            continue
        if stripped.startswith("|"):
            if i + 1 >= len(lines) or not TABLE_SEP.match(lines[i + 1].strip()):
                raise MarkdownError(f"{where(i)}: a table needs a |---| row under its header")
            header = _cells(line)
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                row = _cells(lines[i])
                if len(row) != len(header):
                    raise MarkdownError(f"{where(i)}: {len(row)} cells, the header has "
                                        f"{len(header)}")
                rows.append(row)
                i += 1
            blank()
            out += [".. list-table::", "   :header-rows: 1", ""]
            for row in [header] + rows:
                for k, cell in enumerate(row):
                    out.append(f"   {'* -' if k == 0 else '  -'} {inline(cell, where(i))}".rstrip())
            out.append("")
            continue
        if m := BULLET.match(line):
            item, i = [m.group(1)], i + 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            if not out or not out[-1].startswith(("- ", "  ")):
                blank()
            out.append("- " + inline(item[0], where(i)))
            out += ["  " + inline(t, where(i)) for t in item[1:]]
            continue
        if line.startswith((" ", "\t", ">", "<", "*", "+")) or re.match(r"^\d+\. ", line):
            raise MarkdownError(f"{where(i)}: Markdown this converter does not read: {line!r}")
        # a paragraph: up to the next blank line or block
        para = []
        while (i < len(lines) and lines[i].strip() and not HEADING.match(lines[i])
               and not BULLET.match(lines[i]) and not lines[i].strip().startswith(("|", "```"))):
            para.append(inline(lines[i].strip(), where(i)))
            i += 1
        blank()
        out += para
    blank()
    return out


def setup(app):
    from docutils.parsers.rst import Directive, directives
    from docutils.statemachine import StringList
    from sphinx.util.nodes import nested_parse_with_titles
    from docutils import nodes

    class MarkdownInclude(Directive):
        """Include a Markdown file (relative to this document) converted to reST."""
        required_arguments = 1
        has_content = False

        def run(self):
            env = self.state.document.settings.env
            rel, path = env.relfn2path(directives.path(self.arguments[0]))
            env.note_dependency(rel)
            text = Path(path).read_text(encoding="utf-8")
            try:
                rst = convert(text, rel)
            except MarkdownError as e:
                raise self.error(str(e)) from None
            node = nodes.section()
            node.document = self.state.document
            nested_parse_with_titles(self.state, StringList(rst, rel), node)
            return node.children

    app.add_directive("markdown-include", MarkdownInclude)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print("\n".join(convert(Path(sys.argv[1]).read_text(encoding="utf-8"), sys.argv[1])))
