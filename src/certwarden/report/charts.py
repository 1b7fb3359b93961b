"""Inline SVG charts: no script, no external asset, readable without JavaScript.

Each chart is ``<svg class="chart" data-chart="NAME">`` and each mark carries ``data-value``,
so a test can check the drawing against the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

SEVERITY_COLORS = {"critical": "#7f1d1d", "high": "#dc2626", "medium": "#f59e0b",
                   "low": "#3b82f6", "info": "#9ca3af"}
PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#f59e0b", "#7c3aed", "#0891b2", "#db2777",
           "#65a30d", "#ea580c", "#475569")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _open(name: str, title: str, w: int, h: int) -> str:
    return (f'<svg class="chart" data-chart="{name}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>')


def hbars(name: str, title: str, items: Sequence[tuple[str, int]],
          colors: Sequence[str] | dict[str, str] = PALETTE, width: int = 460) -> str:
    """Horizontal bars, one per (label, value)."""
    row, label_w, top = 22, 170, 8
    h = top + row * max(len(items), 1) + 8
    out = [_open(name, title, width, h)]
    if not items:
        out.append(f'<text x="8" y="20" {_FONT} fill="#6b7280">nothing to show</text></svg>')
        return "".join(out)
    peak = max(v for _, v in items) or 1
    span = width - label_w - 50
    for i, (label, value) in enumerate(items):
        y = top + i * row
        color = colors.get(label, PALETTE[i % len(PALETTE)]) if isinstance(colors, dict) else (
            colors[i % len(colors)])
        bw = max(2.0, span * value / peak) if value else 0.0
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" {_FONT} '
                   f'fill="#111827">{escape(label[:26])}</text>')
        out.append(f'<rect class="bar" data-label="{escape(label)}" data-value="{value}" '
                   f'x="{label_w}" y="{y + 3}" width="{bw:.1f}" height="{row - 6}" '
                   f'fill="{color}" rx="2"/>')
        out.append(f'<text x="{label_w + bw + 6:.1f}" y="{y + 15}" {_FONT} '
                   f'fill="#374151">{value}</text>')
    out.append("</svg>")
    return "".join(out)


def columns(name: str, title: str, items: Sequence[tuple[str, int, str]],
            width: int = 700, height: int = 220) -> str:
    """Vertical columns (label, value, color): the expiry timeline."""
    left, bottom, top = 34, 62, 14  # room below for the rotated labels
    out = [_open(name, title, width, height)]
    peak = max((v for _, v, _ in items), default=0) or 1
    plot_h = height - bottom - top
    n = max(len(items), 1)
    step = (width - left - 8) / n
    out.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" '
               f'y2="{height - bottom}" stroke="#9ca3af"/>')
    out.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" {_FONT} '
               f'fill="#6b7280">{peak}</text>')
    for i, (label, value, color) in enumerate(items):
        bh = plot_h * value / peak
        x = left + i * step + step * 0.15
        y = height - bottom - bh
        out.append(f'<rect class="bar" data-label="{escape(label)}" data-value="{value}" '
                   f'x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{bh:.1f}" '
                   f'fill="{color}" rx="2"/>')
        if value:
            out.append(f'<text x="{x + step * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                       f'{_FONT} fill="#374151">{value}</text>')
        cx = x + step * 0.35
        out.append(f'<text x="{cx:.1f}" y="{height - bottom + 14}" text-anchor="end" '
                   f'transform="rotate(-35 {cx:.1f} {height - bottom + 14})" {_FONT} '
                   f'fill="#111827">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def donut(name: str, title: str, items: Sequence[tuple[str, int, str]], size: int = 220) -> str:
    """Share of a whole (label, value, color), with a legend."""
    width = size + 200
    out = [_open(name, title, width, size)]
    total = sum(v for _, v, _ in items)
    cx = cy = size / 2
    r, inner = size / 2 - 10, size / 4
    if total == 0:
        out.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="#e5e7eb"/></svg>')
        return "".join(out)
    angle = -math.pi / 2
    for label, value, color in items:
        if not value:
            continue
        frac = value / total
        if frac >= 0.9999:  # a full ring cannot be one arc
            out.append(f'<circle class="slice" data-label="{escape(label)}" '
                       f'data-value="{value}" cx="{cx}" cy="{cy}" r="{(r + inner) / 2}" '
                       f'fill="none" stroke="{color}" stroke-width="{r - inner}"/>')
            continue
        end = angle + 2 * math.pi * frac
        large = 1 if frac > 0.5 else 0
        p = [(cx + r * math.cos(angle), cy + r * math.sin(angle)),
             (cx + r * math.cos(end), cy + r * math.sin(end)),
             (cx + inner * math.cos(end), cy + inner * math.sin(end)),
             (cx + inner * math.cos(angle), cy + inner * math.sin(angle))]
        d = (f"M{p[0][0]:.2f},{p[0][1]:.2f} A{r},{r} 0 {large} 1 {p[1][0]:.2f},{p[1][1]:.2f} "
             f"L{p[2][0]:.2f},{p[2][1]:.2f} A{inner},{inner} 0 {large} 0 "
             f"{p[3][0]:.2f},{p[3][1]:.2f} Z")
        out.append(f'<path class="slice" data-label="{escape(label)}" data-value="{value}" '
                   f'd="{d}" fill="{color}"/>')
        angle = end
    out.append(f'<text x="{cx}" y="{cy + 5}" text-anchor="middle" font-size="18" '
               f'font-family="system-ui, sans-serif" fill="#111827">{total}</text>')
    for i, (label, value, color) in enumerate(items):
        y = 30 + i * 24
        pct = 100 * value / total
        out.append(f'<rect x="{size + 10}" y="{y - 11}" width="14" height="14" fill="{color}"/>')
        out.append(f'<text x="{size + 30}" y="{y}" {_FONT} fill="#111827">'
                   f'{escape(label)}: {value} ({pct:.0f}%)</text>')
    out.append("</svg>")
    return "".join(out)


def grouped(name: str, title: str, groups: Sequence[tuple[str, Sequence[tuple[str, int]]]],
            colors: Sequence[str] = ("#94a3b8", "#2563eb", "#dc2626"),
            width: int = 700, height: int = 240) -> str:
    """Columns grouped per label (e.g. per year: renewals now, renewals needed, violating)."""
    left, bottom, top = 40, 40, 28
    out = [_open(name, title, width, height)]
    peak = max((v for _, vals in groups for _, v in vals), default=0) or 1
    plot_h = height - bottom - top
    step = (width - left - 8) / max(len(groups), 1)
    series = [s for s, _ in groups[0][1]] if groups else []
    for j, s in enumerate(series):
        out.append(f'<rect x="{left + j * 190}" y="4" width="12" height="12" '
                   f'fill="{colors[j % len(colors)]}"/><text x="{left + j * 190 + 16}" y="14" '
                   f'{_FONT} fill="#111827">{escape(s)}</text>')
    out.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" '
               f'y2="{height - bottom}" stroke="#9ca3af"/>')
    for i, (label, vals) in enumerate(groups):
        bw = step * 0.8 / max(len(vals), 1)
        for j, (s, v) in enumerate(vals):
            bh = plot_h * v / peak
            x = left + i * step + step * 0.1 + j * bw
            y = height - bottom - bh
            out.append(f'<rect class="bar" data-label="{escape(label)} {escape(s)}" '
                       f'data-value="{v}" x="{x:.1f}" y="{y:.1f}" width="{bw * 0.9:.1f}" '
                       f'height="{bh:.1f}" fill="{colors[j % len(colors)]}"/>')
            out.append(f'<text x="{x + bw * 0.45:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                       f'font-size="10" font-family="system-ui, sans-serif" '
                       f'fill="#374151">{v}</text>')
        out.append(f'<text x="{left + i * step + step / 2:.1f}" y="{height - bottom + 16}" '
                   f'text-anchor="middle" {_FONT} fill="#111827">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
