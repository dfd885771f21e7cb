"""A plan's usable memory per device is computed in one place (Plan.usable_gib): plan.json, the CLI
and the app read the same figure."""

from __future__ import annotations

from tests.plan.test_planner import request
from tui.plan.fitting import SAFETY_MARGIN
from tui.plan.planner import plan


def test_usable_memory_is_the_plans_one_figure():
    p = plan(request("rtx4080-16g", "qwen2.5-0.5b"))
    assert p.usable_gib == p.to_json()["estimate"]["usable_gib"] == round(p.capacity_gib * (1 - SAFETY_MARGIN), 3)
    assert 0 < p.usable_gib < p.capacity_gib
