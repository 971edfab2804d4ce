"""The clinical safety officer's page: what the safety screen missed and what it cried wolf on.

Every raise and lower of a comment's safety level is listed with the staff member's
reason and the comment's wording with personal details removed (the officer sees no
patient record), beside what the rules in force say of that wording today. A monthly
count of misses and false alarms, as a chart and a table, shows whether the screen is
getting better.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request

from engage.core.permissions import require
from engage.extensions import db
from engage.feedback import safeguarding
from engage.feedback.analysis import active_rules
from engage.feedback.safeguarding import Month
from engage.org.models import Service

bp = Blueprint("safety", __name__, url_prefix="/feedback/safety")

KINDS = ("miss", "false_alarm", "all")
#: Size of the monthly chart, in SVG units.
CHART_W, CHART_H, CHART_PAD = 640, 200, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    value: int
    kind: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    labels: list[tuple[float, str]]
    top: int
    width: int = CHART_W
    height: int = CHART_H
    pad: int = CHART_PAD


def chart(months: list[Month]) -> Chart:
    """Two bars a month (misses, false alarms) on one scale, for a server-drawn SVG."""
    top = max([1, *(m.misses for m in months), *(m.false_alarms for m in months)])
    slot = (CHART_W - CHART_PAD) / max(len(months), 1)
    bar_w = slot / 3
    scale = (CHART_H - 2 * CHART_PAD) / top
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    for n, month in enumerate(months):
        x0 = CHART_PAD + n * slot + slot / 6
        for k, (kind, value) in enumerate((("miss", month.misses),
                                           ("false_alarm", month.false_alarms))):
            height = value * scale
            bars.append(Bar(round(x0 + k * bar_w, 1), round(CHART_H - CHART_PAD - height, 1),
                            round(height, 1), value, kind))
        labels.append((round(x0 + bar_w, 1), month.month.strftime("%m")))
    return Chart(bars=bars, labels=labels, top=top)


@bp.route("/misses")
@require("safety.manage")
def misses() -> str:
    kind = request.args.get("kind", "miss")
    if kind not in KINDS:
        kind = "miss"
    rules, _rules_id = active_rules()
    rows = safeguarding.with_rules_now(
        safeguarding.changes(None if kind == "all" else kind), rules)
    months = safeguarding.monthly_counts()
    services = {s.id: s.name for s in db.session.scalars(db.select(Service))}
    return render_template("feedback_admin/safety_misses.html", rows=rows, kind=kind,
                           months=months, chart=chart(months), services=services)
