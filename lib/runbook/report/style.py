"""The charts' one style: size, resolution and a colour per service, shared by every chart the report draws."""

from __future__ import annotations

from collections.abc import Iterable

SIZE = (9, 4.8)  # inches: readable in a pull-request comment at full width
DPI = 110
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def service_colors(services: Iterable[str]) -> dict[str, str]:
    """Each service its colour, in the run's order: the same service has the same colour in every chart."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(services)}
