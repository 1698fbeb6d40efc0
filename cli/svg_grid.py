"""A grid of glyphs (rows: sources, columns: destinations) drawn as one self-contained SVG picture, for the
markdown and HTML reports. Every text that reaches the picture is escaped (names come from manifests)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

CELL = 20  # px per cell
CHAR = 7  # px per character of a label (monospace, 12px)
MARGIN = 8
EMPTY = ""  # no cell for this pair (the same endpoint, or two external hosts)


@dataclass(frozen=True)
class Shade:
    fill: str
    meaning: str


@dataclass
class Grid:
    """`cells[i][j]`: the glyph of labels[i] -> labels[j]; its first character picks the shade."""

    labels: list[str]
    cells: list[list[str]]
    shades: dict[str, Shade]


def _shade(grid: Grid, glyph: str) -> Shade | None:
    return grid.shades.get(glyph[:1]) if glyph else None


def svg(grid: Grid, title: str) -> str:
    n = len(grid.labels)
    label_w = MARGIN + CHAR * max((len(f"{i} {k}") for i, k in enumerate(grid.labels)), default=1)
    top = CELL + MARGIN
    legend_top = top + n * CELL + MARGIN
    width = max(label_w + n * CELL + MARGIN, MARGIN + CHAR * max((len(s.meaning) + 4 for s in grid.shades.values()), default=1))
    height = legend_top + len(grid.shades) * CELL + MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'font-family="monospace" font-size="12" aria-label={quoteattr(title)}>', f"<title>{escape(title)}</title>"]
    for j in range(n):
        x = label_w + j * CELL + CELL // 2
        out.append(f'<text x="{x}" y="{CELL}" text-anchor="middle">{j}</text>')
    for i, src in enumerate(grid.labels):
        y = top + i * CELL
        out.append(f'<text x="{MARGIN}" y="{y + CELL - 6}">{escape(f"{i} {src}")}</text>')
        for j, dst in enumerate(grid.labels):
            glyph = grid.cells[i][j]
            shade = _shade(grid, glyph)
            x = label_w + j * CELL
            fill = shade.fill if shade else "#f2f2f2"
            what = f"{src} -> {dst}: {shade.meaning if shade else 'no cell'}" + (f" ({glyph})" if glyph else "")
            text = (f'<text x="{x + CELL // 2 - 1}" y="{y + CELL - 6}" text-anchor="middle" fill="#ffffff">'
                    f'{escape(glyph)}</text>') if glyph else ""
            out.append(f'<g><title>{escape(what)}</title><rect x="{x}" y="{y}" width="{CELL - 2}" height="{CELL - 2}" '
                       f'fill="{fill}"/>{text}</g>')
    for k, (glyph, shade) in enumerate(grid.shades.items()):
        y = legend_top + k * CELL
        out.append(f'<rect x="{MARGIN}" y="{y}" width="{CELL - 2}" height="{CELL - 2}" fill="{shade.fill}"/>'
                   f'<text x="{MARGIN + CELL + 4}" y="{y + CELL - 6}">{escape(f"{glyph} {shade.meaning}")}</text>')
    out.append("</svg>")
    return "".join(out)
