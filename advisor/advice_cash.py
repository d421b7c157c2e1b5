"""The cash and capacity estimate of a recommendation: hours back and money per month, as ranges.

``estimate_capacity`` applies ``Rules.capacity`` to the answers and the tasks handed over: the
partner's fee is new cash out, and only cash that really stops (staff hired for the work, vendors
paid today) counts as saved. Every figure is rounded as the estimate it is (``round_money``,
``round_hours``). ``advisor.advice`` calls it while building a recommendation.
"""

from __future__ import annotations

from typing import Any

from advisor.advice_rules import Answers, OwnerCash, Range, Rules


def _span(low: float, high: float) -> dict[str, float]:
    return {"low": low, "high": high}


def round_money(value: float) -> int:
    """Honest rounding for a figure that is an estimate: 2 significant figures, never "1,052"."""
    size = abs(value)
    step = 10 if size < 1000 else 50 if size < 5000 else 100 if size < 20000 else 1000
    return int(round(value / step) * step)


def round_hours(value: float) -> int:
    size = abs(value)
    step = 1 if size < 20 else 5 if size < 200 else 10
    return int(round(value / step) * step)


def estimate_capacity(rules: Rules, answers: Answers, functions: list[dict[str, Any]],
                      handed: list[dict[str, Any]]) -> dict[str, Any]:
    """Hours back and cash as ranges: the partner's fee is new cash out; only cash that really
    stops (staff hired for the work, vendors paid today) is counted as saved."""
    c = rules.capacity
    ticked = [f for f in functions if not f["suggested"]]
    stated = answers.get(rules.hours_question)
    hours_said = isinstance(stated, (int, float)) and not isinstance(stated, bool)
    size = str(answers.get(rules.size_question))
    if not ticked:
        hours: Range = (0.0, 0.0)
    elif isinstance(stated, (int, float)):
        hours = (float(stated), float(stated))
    else:
        hours = c.hours_by_size.get(size) or max(c.hours_by_size.values())
    share = len(handed) / len(ticked) if ticked else 0.0
    on_handed = (hours[0] * share, hours[1] * share)
    owner = str(answers.get(rules.owners_question) or "core_team")
    cash = c.owners.get(owner) or c.owners.get("core_team") or OwnerCash((0.0, 0.0), "none")
    weeks = c.weeks_per_month
    rate = _mean_range([rules.tasks[f["id"]].partner_rate for f in handed])
    staff = _mean_range([rules.tasks[f["id"]].staff_rate for f in handed])
    back = (on_handed[0] * cash.hours_back[0], on_handed[1] * cash.hours_back[1])
    fee = (on_handed[0] * c.partner_hours[0] * rate[0] * weeks, on_handed[1] * c.partner_hours[1] * rate[1] * weeks)
    if cash.cash_stops == "staff":
        saved = (on_handed[0] * cash.hours_back[0] * staff[0] * weeks,
                 on_handed[1] * cash.hours_back[1] * staff[1] * weeks)
    elif cash.cash_stops == "vendors":
        saved = (on_handed[0] * rate[0] * weeks, on_handed[1] * rate[1] * weeks)
    else:
        saved = (0.0, 0.0)
    net = (fee[0] - saved[1], fee[1] - saved[0])
    growth = c.growth_by_stage.get(str(answers.get("stage")), (1.0, 1.0))
    fee_mid, net_mid, back_mid = sum(fee) / 2, sum(net) / 2, sum(back) / 2
    # Which way the cash most likely goes: by the middle of the range, "about the same" only
    # within a band of the fee (a range from -690 to +12,400 is more cash out, not the same).
    band = c.same_cash_band * fee_mid
    sign = "none" if not handed else "more" if net_mid > band else "less" if net_mid < -band else "about_same"
    breakeven = round_money(net_mid / (back_mid * weeks)) if sign == "more" and back_mid > 0 else None
    return {
        "hours_week": _span(round_hours(hours[0]), round_hours(hours[1])),
        "hours_said": hours_said,
        "hours_handed_week": _span(round_hours(on_handed[0]), round_hours(on_handed[1])),
        "hours_back_week": _span(round_hours(back[0]), round_hours(back[1])),
        "partner_cost_month": _span(round_money(fee[0]), round_money(fee[1])),
        "in_house_cash_saved_month": _span(round_money(saved[0]), round_money(saved[1])),
        "net_cash_month": _span(round_money(net[0]), round_money(net[1])),
        "transition_cost": _span(round_money(fee_mid * c.transition_months[0]),
                                 round_money(fee_mid * c.transition_months[1])),
        "net_cash": sign,
        "hours_ahead_week": _span(round_hours(on_handed[0] * growth[0]), round_hours(on_handed[1] * growth[1])),
        "breakeven_per_hour": breakeven,
        "currency": c.currency,
        "owner": owner,
        "cash_stops": cash.cash_stops,
        "tasks_handed": len(handed),
        "tasks_named": len(ticked),
        "partner_rate": _span(round(rate[0]), round(rate[1])),
        "staff_rate": _span(round(staff[0]), round(staff[1])),
        "hours_back_share": _span(*cash.hours_back),
        "partner_hours": _span(*c.partner_hours),
        "transition_months": _span(*c.transition_months),
        "growth": _span(*growth),
        "weeks_per_month": weeks,
    }


def _mean_range(ranges: list[Range]) -> Range:
    if not ranges:
        return (0.0, 0.0)
    return (sum(r[0] for r in ranges) / len(ranges), sum(r[1] for r in ranges) / len(ranges))

