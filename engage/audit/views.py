"""The audit viewer for admins: filter, page through and export the audit log.

Every page shown and every export is itself an audit event, with its filter.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, render_template, request
from flask import Response as FlaskResponse

from engage.audit import search
from engage.audit.services import record
from engage.core.permissions import require
from engage.extensions import db

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 50
#: Rows in one CSV export; a wider search should be narrowed by date.
EXPORT_LIMIT = 100_000
EXPORT_COLUMNS = ("id", "at", "user_id", "user", "actor", "action", "object_type",
                  "object_id", "patient_id", "patient_ref", "ip", "detail")


@bp.route("")
@require("audit.view")
def index() -> tuple[str, int]:
    f = search.read_filter(request.args)
    raw_before = request.args.get("before", "")
    before = int(raw_before) if search.is_id(raw_before) else None
    if f.errors:
        # Nothing is shown, so nothing is recorded; the form keeps what was typed.
        return render_template("audit/index.html", f=f, events=[], more=False,
                               emails={}, refs={}, actions=search.KNOWN_ACTIONS), 400
    events, more = search.page(f, before, PAGE_SIZE)
    emails, refs = search.names_for(events)
    record("view", "audit_event", None, filters=f.describe(), before=before,
           count=len(events))
    return render_template("audit/index.html", f=f, events=events, more=more, emails=emails,
                           refs=refs, actions=search.KNOWN_ACTIONS), 200


@bp.route("/export.csv")
@require("audit.view")
def export() -> FlaskResponse | tuple[str, int]:
    """The filtered events as CSV (newest first); spreadsheet formulas defused."""
    f = search.read_filter(request.args)
    if f.errors:
        return render_template("audit/index.html", f=f, events=[], more=False, emails={},
                               refs={}, actions=search.KNOWN_ACTIONS), 400
    events = list(db.session.scalars(search.audit_query(f).limit(EXPORT_LIMIT)))
    emails, refs = search.names_for(events)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for event in events:
        row = search.as_row(event, emails, refs)
        row["detail"] = json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)
        writer.writerow([csv_safe(row[c]) for c in EXPORT_COLUMNS])
    record("export", "audit_event", None, filters=f.describe(), count=len(events),
           truncated=len(events) == EXPORT_LIMIT)
    return FlaskResponse(buffer.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="audit-events.csv"'})


def csv_safe(value: Any) -> Any:
    """Defuse spreadsheet formulas (CSV injection): any text a spreadsheet would evaluate
    starts with a quote. Numbers and empty cells pass as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "|", "%"):
        return "'" + value
    return value
