"""The geometry of a key's use chart: stacked bars (successful, failed calls) per hour,
drawn by the template as inline SVG (no script, no external asset)."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 720
HEIGHT = 180
PAD_LEFT = 36
PAD_BOTTOM = 24
PAD_TOP = 12


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    label: str
    ok: int
    failed: int
    show_label: bool


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    top: int  # the largest hour's count: the y axis' top
    baseline: float
    total: int
    failed: int


def use_chart(slots: list[tuple[str, int, int]]) -> Chart:
    """Bars for ``slots`` of (label, successful, failed), scaled to the largest hour."""
    top = max([ok + failed for _, ok, failed in slots] + [1])
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = (WIDTH - PAD_LEFT) / max(len(slots), 1)
    baseline = HEIGHT - PAD_BOTTOM
    bars = []
    for i, (label, ok, failed) in enumerate(slots):
        ok_h = plot_height * ok / top
        failed_h = plot_height * failed / top
        bars.append(
            Bar(
                x=PAD_LEFT + i * step + 2,
                width=max(step - 4, 1),
                ok_y=baseline - ok_h,
                ok_height=ok_h,
                failed_y=baseline - ok_h - failed_h,
                failed_height=failed_h,
                label=label,
                ok=ok,
                failed=failed,
                show_label=i % 4 == 0,
            )
        )
    total = sum(ok + failed for _, ok, failed in slots)
    failed_total = sum(failed for _, _, failed in slots)
    return Chart(WIDTH, HEIGHT, bars, top, baseline, total, failed_total)
