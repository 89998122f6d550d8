"""Sphinx math (``:math:`` and ``.. math::``) drawn by Matplotlib's mathtext, offline.

Sphinx's own HTML math renderers need MathJax from the network (``sphinx.ext.mathjax``) or a
LaTeX installation (``sphinx.ext.imgmath``).  This one renders each formula with
``matplotlib.mathtext`` (no LaTeX: Matplotlib's own parser and fonts) into an SVG file under
``_images/math/``; the page shows it as an image whose alternative text is the formula's
source.  Mathtext reads a subset of TeX (no ``cases`` or ``align`` environments); a formula
it cannot read is a Sphinx warning, hence an error in the ``-W`` build.

Set ``html_math_renderer = "mathtext"``; ``mathtext_fontsize`` (points) sets the size.
"""
from __future__ import annotations

import hashlib
import html
import io
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)
FOLDER = "math"
_rendered: dict[Path, float] = {}     # file written in this build -> its depth


def render_svg(latex: str, fontsize: float) -> tuple[bytes, float]:
    """The formula as SVG bytes and its depth below the baseline in points."""
    import matplotlib
    from matplotlib import mathtext

    buf = io.BytesIO()
    with matplotlib.rc_context({"mathtext.fontset": "cm", "font.size": fontsize,
                                "svg.fonttype": "path", "svg.hashsalt": "fastloss-docs"}):
        depth = mathtext.math_to_image(f"${latex}$", buf, dpi=72, format="svg")
    svg = buf.getvalue()
    # a stable file: drop the date Matplotlib writes into the metadata
    svg = b"\n".join(line for line in svg.split(b"\n") if b"<dc:date>" not in line)
    return svg, depth


def _image(self, node, latex: str, display: bool) -> str:
    builder = self.builder
    size = builder.config.mathtext_fontsize * (1.15 if display else 1.0)
    name = hashlib.sha256(f"{latex}|{size}".encode()).hexdigest()[:16] + ".svg"
    dest = Path(builder.outdir, builder.imagedir, FOLDER, name)
    depth = _rendered.get(dest)
    if depth is None:
        try:
            svg, depth = render_svg(latex, size)
        except Exception as e:          # mathtext raises ValueError with its parser's message
            logger.warning("mathtext cannot render %r: %s", latex, str(e).splitlines()[0],
                           location=node)
            return f'<code class="math">{html.escape(latex)}</code>'
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(svg)
        _rendered[dest] = depth
    src = f"{builder.imgpath}/{FOLDER}/{name}"
    alt = html.escape(latex, quote=True)
    if display:
        return f'<img class="math math-display" src="{src}" alt="{alt}" title="{alt}"/>'
    return (f'<img class="math math-inline" src="{src}" alt="{alt}" title="{alt}" '
            f'style="vertical-align: -{depth:.2f}pt"/>')


def visit_math(self, node):
    self.body.append(_image(self, node, " ".join(node.astext().split()), display=False))
    raise nodes.SkipNode


def visit_displaymath(self, node):
    if node.get("label"):
        self.body.append(f'<span id="{node["ids"][0]}"></span>' if node.get("ids") else "")
    parts = [p.strip() for p in node.astext().split("\n\n") if p.strip()]
    self.body.append('<div class="math-display">')
    for part in parts:
        latex = " ".join(line.strip() for line in part.splitlines())
        self.body.append(f"<p>{_image(self, node, latex, display=True)}</p>")
    self.body.append("</div>")
    raise nodes.SkipNode


def setup(app):
    app.add_config_value("mathtext_fontsize", 12.0, "html")
    app.add_html_math_renderer("mathtext", (visit_math, None), (visit_displaymath, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
