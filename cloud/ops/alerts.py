"""Alerts for central ops: rules with thresholds set on a page, raised and cleared by
:func:`evaluate`.

``evaluate`` compares what is true now with the open alerts: a rule that fires for a subject
with no open alert raises one, an open alert whose rule no longer fires (or was switched off)
is cleared; both are written to the audit log in the same transaction. Evaluations queue on
the ``alerts_evaluated`` counter row and one that comes within ``min_interval`` of the last is
skipped, so every dashboard poll may ask and the hub evaluates at most every few seconds;
``wicket-hub alerts`` evaluates on a schedule of its own when nobody is watching.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import gates, sessions, venues
from cloud.core.audit import SYSTEM, audit_log, record
from cloud.core.changes import claim_turn
from cloud.core.errors import Code, HubError
from cloud.fleet.tables import appliances
from cloud.ops import attendance as ops
from cloud.ops import devices as ops_devices
from cloud.ops.tables import alert_rules, alerts, entry_minutes
from sync.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)

MIN_SCANS = 10  # the refused ratio is judged on at least this many scans in the window
MIN_INTERVAL = timedelta(seconds=5)


@dataclass(frozen=True)
class Rule:
    kind: str
    threshold: float
    window_min: int
    enabled: bool
    unit: str
    updated_by: str | None = None
    updated_at: str | None = None


# kind -> (default threshold, default window in minutes, enabled by default, unit)
DEFAULTS: dict[str, tuple[float, int, bool, str]] = {
    "appliance_offline": (5.0, 5, True, "min"),
    "sync_lag": (300.0, 5, True, "s"),
    "clock_skew": (30.0, 5, True, "s"),
    "low_entry_rate": (2.0, 5, False, "per_min"),
    "refused_ratio": (20.0, 5, True, "percent"),
    "entries_refused": (0.0, 60, True, "entries"),
}
REFUSED_ACTION = "sync.entries_refused"  # the audit rows entries_refused counts
KINDS = tuple(DEFAULTS)


class AlertError(HubError):
    """An alert rule that cannot be set as asked."""

    codes = {
        "unknown_alert_rule": Code(422, "no alert rule '%(kind)s'"),
        "alert_not_numbers": Code(422, "%(kind)s: threshold and window must be numbers"),
        "alert_threshold_negative": Code(422, "%(kind)s: the threshold must be a number of 0 "
                                              "or more"),
        "alert_threshold_percent": Code(422, "%(kind)s: the threshold is a percentage (0 to "
                                             "100)"),
        "alert_window_range": Code(422, "%(kind)s: the window is 1 to 240 minutes"),
    }


def get_rules(conn: sa.Connection) -> dict[str, Rule]:
    stored = {r.kind: r for r in conn.execute(sa.select(alert_rules))}
    out = {}
    for kind, (threshold, window, enabled, unit) in DEFAULTS.items():
        r = stored.get(kind)
        out[kind] = (Rule(kind, threshold, window, enabled, unit) if r is None else
                     Rule(kind, float(r.threshold), int(r.window_min), bool(r.enabled), unit,
                          r.updated_by, ops.iso(r.updated_at)))
    return out


def set_rule(conn: sa.Connection, kind: str, threshold: float, window_min: int,
             enabled: bool, actor: str) -> Rule:
    """Change one rule; audited with the rule before and after."""
    if kind not in DEFAULTS:
        raise AlertError("unknown_alert_rule", kind=kind)
    try:
        threshold = float(threshold)
        window_min = int(window_min)
    except (TypeError, ValueError):
        raise AlertError("alert_not_numbers", kind=kind) from None
    if not threshold >= 0 or threshold > 1e9:
        raise AlertError("alert_threshold_negative", kind=kind)
    if kind == "refused_ratio" and threshold > 100:
        raise AlertError("alert_threshold_percent", kind=kind)
    if not 1 <= window_min <= 240:
        raise AlertError("alert_window_range", kind=kind)
    before = get_rules(conn)[kind]
    now = utcnow()
    values = {"threshold": threshold, "window_min": window_min, "enabled": bool(enabled),
              "updated_at": now, "updated_by": actor}
    if conn.execute(sa.update(alert_rules).where(alert_rules.c.kind == kind)
                    .values(**values)).rowcount == 0:
        conn.execute(sa.insert(alert_rules).values(kind=kind, **values))
    record(conn, actor, "alert_rule.update", f"alert_rule:{kind}",
           {"threshold": before.threshold, "window_min": before.window_min,
            "enabled": before.enabled},
           {"threshold": threshold, "window_min": window_min, "enabled": bool(enabled)})
    return get_rules(conn)[kind]


@dataclass
class Evaluation:
    ran: bool
    raised: list[dict[str, Any]] = field(default_factory=list)
    cleared: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Firing:
    venue_id: int | None
    value: float
    threshold: float
    detail: str


def evaluate(conn: sa.Connection, now: datetime | None = None,
             min_interval: timedelta = MIN_INTERVAL) -> Evaluation:
    """Raise and clear alerts to match what is true ``now``, in the caller's transaction."""
    now = now or utcnow()
    if not claim_turn(conn, "alerts_evaluated", int(now.timestamp() * 1000),
                      int(min_interval.total_seconds() * 1000)):
        return Evaluation(ran=False)
    rules = get_rules(conn)
    firing: dict[tuple[str, str], Firing] = {}
    status = ops_devices.appliance_status(
        conn, now, timedelta(minutes=rules["appliance_offline"].threshold))
    _appliance_rules(rules, status, firing)
    _entry_rules(conn, rules, now, firing)
    _refused_entries(conn, rules["entries_refused"], now, firing)

    result = Evaluation(ran=True)
    open_rows = {(a.kind, a.subject): a for a in conn.execute(
        sa.select(alerts).where(alerts.c.cleared_at.is_(None)))}
    for key, a in sorted(open_rows.items()):
        if key in firing:
            f = firing[key]
            if f.value != a.value or f.detail != a.detail:
                conn.execute(sa.update(alerts).where(alerts.c.id == a.id)
                             .values(value=f.value, detail=f.detail[:400]))
            continue
        conn.execute(sa.update(alerts).where(alerts.c.id == a.id).values(cleared_at=now))
        why = "rule switched off" if not rules[a.kind].enabled else "back within threshold"
        after = {"kind": a.kind, "subject": a.subject, "cleared_at": to_iso(now), "why": why}
        record(conn, SYSTEM, "alert.clear", f"alert:{a.id}", {"value": a.value}, after)
        log.info("alert %s cleared: %s (%s)", a.id, a.kind, a.subject)
        result.cleared.append({"id": a.id, **after})
    for (kind, subject), f in sorted(firing.items()):
        if (kind, subject) in open_rows:
            continue
        alert_id = conn.execute(sa.insert(alerts).values(
            kind=kind, subject=subject, venue_id=f.venue_id, value=f.value,
            threshold=f.threshold, detail=f.detail[:400], raised_at=now)
        ).inserted_primary_key[0]
        after = {"kind": kind, "subject": subject, "value": f.value, "threshold": f.threshold,
                 "detail": f.detail[:400]}
        record(conn, SYSTEM, "alert.raise", f"alert:{alert_id}", None, after)
        log.warning("alert %s raised: %s (%s) %s", alert_id, kind, subject, f.detail)
        result.raised.append({"id": alert_id, **after})
    return result


def _appliance_rules(rules: dict[str, Rule], status: list[dict[str, Any]],
                     firing: dict[tuple[str, str], Firing]) -> None:
    offline, lag, skew = rules["appliance_offline"], rules["sync_lag"], rules["clock_skew"]
    for a in status:
        if a["state"] != "active":
            continue
        subject = f"appliance:{a['id']}"
        if not a["online"]:
            if offline.enabled:
                age = a["heartbeat_age_s"]
                minutes = round(age / 60, 2) if age is not None else 0.0
                firing[("appliance_offline", subject)] = Firing(
                    a["venue_id"], minutes, offline.threshold,
                    f"{a['name']} ({a['venue']}): no contact for {minutes:g} min")
            continue  # an offline appliance's lag and clock are stale: the offline alert says it
        lags = [x for x in (a["lag_down_s"], a["lag_up_s"]) if x is not None]
        if lag.enabled and lags and max(lags) > lag.threshold:
            firing[("sync_lag", subject)] = Firing(
                a["venue_id"], max(lags), lag.threshold,
                f"{a['name']} ({a['venue']}): down {a['lag_down_s']} s, up {a['lag_up_s']} s")
        if (skew.enabled and a["clock_skew_s"] is not None
                and abs(a["clock_skew_s"]) > skew.threshold):
            firing[("clock_skew", subject)] = Firing(
                a["venue_id"], abs(a["clock_skew_s"]), skew.threshold,
                f"{a['name']} ({a['venue']}): clock {a['clock_skew_s']:+g} s from the hub's")


def refused_entries(conn: sa.Connection, appliance_id: int, venue_id: int,
                    refused: dict[str, str]) -> None:
    """Keep, in the audit log, the entries the hub refused from an appliance (how many, why,
    the first ids); the ``entries_refused`` rule counts them. The caller's transaction."""
    reasons: dict[str, int] = defaultdict(int)
    for reason in refused.values():
        reasons[reason] += 1
    record(conn, f"appliance:{appliance_id}", REFUSED_ACTION, f"appliance:{appliance_id}",
           None, {"venue_id": venue_id, "count": len(refused), "reasons": dict(reasons),
                  "entries": sorted(refused)[:20]})
    log.warning("appliance %s reported %s entries not of its venue %s: refused (%s)",
                appliance_id, len(refused), venue_id, dict(reasons))


def _refused_entries(conn: sa.Connection, rule: Rule, now: datetime,
                     firing: dict[tuple[str, str], Firing]) -> None:
    """An appliance that reported entries of another venue (or of none the hub knows) in the
    rule's window: an appliance's credential used against a venue that is not its own."""
    if not rule.enabled:
        return
    per: dict[str, list] = {}
    for r in conn.execute(sa.select(audit_log.c.subject, audit_log.c.after)
                          .where(audit_log.c.action == REFUSED_ACTION,
                                 audit_log.c.at >= now - timedelta(minutes=rule.window_min))
                          .order_by(audit_log.c.id)):
        after = r.after if isinstance(r.after, dict) else {}
        n = after.get("count") if isinstance(after.get("count"), int) else 0
        seen = per.setdefault(r.subject, [after.get("venue_id"), 0, defaultdict(int)])
        seen[1] += n
        for reason, k in (after.get("reasons") or {}).items():
            seen[2][reason] += k if isinstance(k, int) else 0
    names = {f"appliance:{r.id}": f"{r.name} ({r.venue})" for r in conn.execute(
        sa.select(appliances.c.id, appliances.c.name, venues.c.name.label("venue"))
        .join(venues, venues.c.id == appliances.c.venue_id))} if per else {}
    for subject, (venue_id, n, reasons) in per.items():
        if n > rule.threshold:
            why = ", ".join(f"{k} {reason}" for reason, k in sorted(reasons.items()))
            firing[("entries_refused", subject)] = Firing(
                venue_id, float(n), rule.threshold,
                f"{names.get(subject, subject)}: {n} entries of another venue refused in the "
                f"last {rule.window_min} min ({why})")


def _entry_rules(conn: sa.Connection, rules: dict[str, Rule], now: datetime,
                 firing: dict[tuple[str, str], Firing]) -> None:
    low, refused = rules["low_entry_rate"], rules["refused_ratio"]
    if not (low.enabled or refused.enabled):
        return
    lane_of = ops.lane_map(conn)
    gate_rows = {g.id: g for g in conn.execute(sa.select(gates))}
    em = entry_minutes.c

    def window_counts(window_min: int, session_id: int | None = None):
        since = ops.minute_of(now) - timedelta(minutes=window_min - 1)
        q = (sa.select(em.venue_id, em.lane, sa.func.sum(em.admitted_in).label("i"),
                       sa.func.sum(em.admitted_out).label("o"),
                       sa.func.sum(em.refused).label("r"))
             .where(em.minute >= since).group_by(em.venue_id, em.lane))
        if session_id is not None:
            q = q.where(em.session_id == session_id)
        return conn.execute(q).all()

    if refused.enabled:
        per: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for r in window_counts(refused.window_min):
            lane = lane_of.get((r.venue_id, r.lane))
            key = ((f"gate:{lane.gate_id}", r.venue_id) if lane
                   else (f"lane:{r.venue_id}:{r.lane or '-'}", r.venue_id))
            per[key][0] += int(r.r or 0)
            per[key][1] += int(r.i or 0) + int(r.o or 0) + int(r.r or 0)
        for (subject, venue_id), (n_refused, n_all) in per.items():
            if n_all < MIN_SCANS:
                continue
            ratio = round(100 * n_refused / n_all, 1)
            if ratio > refused.threshold:
                name = (gate_rows[int(subject[5:])].name if subject.startswith("gate:")
                        else subject)
                firing[("refused_ratio", subject)] = Firing(
                    venue_id, ratio, refused.threshold,
                    f"{name}: {n_refused} of {n_all} scans refused in the last "
                    f"{refused.window_min} min")

    if low.enabled:
        in_lanes: dict[int, set[str]] = defaultdict(set)
        for (_venue, code), lane in lane_of.items():
            if lane.direction == "in":
                in_lanes[lane.gate_id].add(code)
        window = timedelta(minutes=low.window_min)
        for s in conn.execute(sa.select(sessions).where(sessions.c.starts_at > now)):
            counts: dict[str, int] = defaultdict(int)
            fetched = False
            for gate in (g for g in gate_rows.values() if g.venue_id == s.venue_id):
                if not in_lanes[gate.id]:
                    continue
                opens = (ops.as_utc(s.gates_open_at) if s.gates_open_at is not None
                         else ops.as_utc(s.starts_at) - timedelta(minutes=gate.open_before_min))
                if now - window < opens:
                    continue  # the whole window must lie inside the gates-open period
                if not fetched:
                    for r in window_counts(low.window_min, s.id):
                        counts[r.lane or ""] += int(r.i or 0)
                    fetched = True
                rate = round(sum(counts[c] for c in in_lanes[gate.id]) / low.window_min, 2)
                if rate < low.threshold:
                    firing[("low_entry_rate", f"gate:{gate.id}")] = Firing(
                        s.venue_id, rate, low.threshold,
                        f"{gate.name} ({s.name}): {rate:g} entries per minute over the last "
                        f"{low.window_min} min")


def _alert_json(a: Any) -> dict[str, Any]:
    return {"id": a.id, "kind": a.kind, "subject": a.subject, "venue_id": a.venue_id,
            "value": a.value, "threshold": a.threshold, "detail": a.detail,
            "raised_at": ops.iso(a.raised_at), "cleared_at": ops.iso(a.cleared_at)}


def open_alerts(conn: sa.Connection) -> list[dict[str, Any]]:
    return [_alert_json(a) for a in conn.execute(
        sa.select(alerts).where(alerts.c.cleared_at.is_(None))
        .order_by(alerts.c.raised_at.desc(), alerts.c.id.desc()))]


def recent_alerts(conn: sa.Connection, limit: int = 200) -> list[dict[str, Any]]:
    return [_alert_json(a) for a in conn.execute(
        sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit))]

