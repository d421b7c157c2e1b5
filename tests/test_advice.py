"""The advice carries the doctrine: contrasting people get visibly different, explainable advice.

Each persona talks to the console through a pipe; the assertions read what `bot.py export` gives.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from advisor.advice import load_advisor
from advisor.dialog import load_dialog
from advisor.render import TEMPLATES_DIR
from tests.conftest import ROOT, run_bot
from tests.personas import PERSONAS, SALES_TEAM


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every persona's conversation as exported, by persona name."""
    db = tmp_path_factory.mktemp("advice") / "advisor.db"
    for name, lines in PERSONAS.items():
        result = run_bot("console", "--user", name, stdin="\n".join(lines) + "\n", db=db)
        assert result.returncode == 0, result.stderr
        assert "YOUR STRATEGIC OUTSOURCING RECOMMENDATION" in result.stdout, result.stdout[-2000:]
    result = run_bot("export", "--format", "json", db=db)
    assert result.returncode == 0, result.stderr
    return {c["user_id"]: c for c in json.loads(result.stdout)}


def rec(exported: dict[str, dict], name: str) -> dict:
    conversation = exported[name]
    assert conversation["status"] == "completed"
    return conversation["recommendation"]


def test_a_pre_launch_planner_scores_higher_than_an_established_cost_cutter(exported):
    planner = rec(exported, "pre_launch_planner")
    cutter = rec(exported, "established_cost_cutter")
    tactical = rec(exported, "growing_tactical")
    assert planner["readiness_score"] > tactical["readiness_score"] > cutter["readiness_score"]
    assert (planner["profile"], tactical["profile"], cutter["profile"]) == ("strategic", "tactical", "reactive")


def test_each_profile_gets_its_own_engagement_model(exported):
    models = {name: rec(exported, name)["engagement_model"]["id"]
              for name in ("pre_launch_planner", "growing_tactical", "established_cost_cutter")}
    assert models == {
        "pre_launch_planner": "strategic_partnership",
        "growing_tactical": "managed_service",
        "established_cost_cutter": "one_off_project",
    }
    assert all(rec(exported, name)["engagement_model"]["why"] for name in models)


def test_the_cost_cutter_is_told_plainly_its_approach_is_traditional_and_what_moving_takes(exported):
    cutter = rec(exported, "established_cost_cutter")
    meaning = " ".join(cutter["profile_meaning"]).lower()
    assert "traditional, reactive" in meaning
    assert "moving to strategic outsourcing would take" in meaning
    assert "partner who shares those goals" in meaning
    why = " ".join(cutter["engagement_model"]["why"]).lower()
    assert "traditional outsourcing" in why and "pilot" in why
    driver_ids = {d["id"] for d in cutter["drivers"]}
    assert {"cost_trigger", "one_off_vendors", "wants_vendor", "short_horizon"} <= driver_ids
    assert all(d["points"] < 0 for d in cutter["drivers"])


def test_the_planner_is_told_to_build_a_partnership_of_equals(exported):
    planner = rec(exported, "pre_launch_planner")
    assert "partnership of equals" in " ".join(planner["profile_meaning"])
    assert {"planning_ahead", "built_in_from_start", "long_horizon", "wants_partner"} <= {
        d["id"] for d in planner["drivers"]}
    assert all(d["points"] > 0 for d in planner["drivers"])


def test_the_score_is_explained_by_its_drivers(exported):
    for name in PERSONAS:
        r = rec(exported, name)
        total = r["base"] + sum(d["points"] for d in r["drivers"])
        assert r["readiness_score"] == max(0, min(100, round(total)))
        assert all(d["text"] and d["text"] != d["id"] for d in r["drivers"])


def test_the_sales_team_hands_over_telemarketing_appointments_and_content_and_keeps_closing(exported):
    r = rec(exported, "sales_team")
    top = [f["id"] for f in r["functions"] if not f["suggested"]]
    assert top[:3] == ["telemarketing", "appointment_setting", "content_marketing"]
    assert r["keep_in_house"][0].startswith("Closing deals")
    telemarketing = r["functions"][0]
    reasons = " ".join(telemarketing["reasons"])
    assert "our sales team also does telemarketing" in reasons  # their own words, quoted
    assert "close deals" in reasons
    assert exported["sales_team"]["answers"]["tasks"] == ["telemarketing", "appointment_setting",
                                                          "content_marketing"]


def test_functions_are_ranked_with_reasons_from_the_persons_answers(exported):
    for name in PERSONAS:
        functions = rec(exported, name)["functions"]
        chosen = [f["score"] for f in functions if not f["suggested"]]
        assert chosen == sorted(chosen, reverse=True)
        for f in functions:
            assert f["name"] and 0 <= f["score"] <= 100 and f["reasons"]
    cutter = rec(exported, "established_cost_cutter")
    assert [f["id"] for f in cutter["functions"]] == ["bookkeeping", "it_support"]
    assert any("job by job" in reason for reason in cutter["functions"][0]["reasons"])


def test_capacity_and_cost_state_their_assumptions(exported):
    capacity = rec(exported, "sales_team")["capacity"]
    assert capacity["hours_per_week"] == 30
    assert 0 < capacity["hours_freed_per_week"] < 30
    assert capacity["in_house_monthly"] > 0 and capacity["outsourced_monthly"] > 0
    assumptions = " ".join(capacity["assumptions"])
    assert "30 hours a week" in assumptions and "USD 50" in assumptions


def test_risks_answer_the_named_concerns(exported):
    growing = rec(exported, "growing_tactical")
    assert [r["concern"] for r in growing["risks"]] == ["quality", "communication"]
    assert all(r["mitigation"] for r in growing["risks"])
    planner = rec(exported, "pre_launch_planner")
    assert any("ISO 27001" in r["mitigation"] for r in planner["risks"])
    assert any("protect your data" in item for item in planner["checklist"])


def test_every_recommendation_has_a_90_day_plan_and_a_partner_checklist(exported):
    for name in PERSONAS:
        r = rec(exported, name)
        assert all(r["plan"][day] for day in ("30", "60", "90"))
        assert len(r["checklist"]) >= 5
        assert any("goals" in item for item in r["checklist"])


def test_contact_details_are_kept_only_when_given_with_consent(exported):
    assert rec(exported, "growing_tactical")["contact"] == {
        "name": "Maria Lopez", "email": "maria@example.com", "phone": None, "consent": True}
    assert rec(exported, "sales_team")["contact"] is None
    assert exported["sales_team"]["answers"]["contact"] == "declined"


def test_the_summary_names_score_profile_and_functions(exported):
    summary = exported["sales_team"]["summary"]
    assert "Readiness" in summary and "Telemarketing and cold calling" in summary
    assert '"our sales team also does telemarketing' in summary


def test_rules_are_data_a_changed_weight_changes_the_score(tmp_path: Path, engine):
    """A non-programmer edits dialogs/advice.yaml; no code changes."""
    shutil.copytree(ROOT / "dialogs", tmp_path / "dialogs")
    rules = tmp_path / "dialogs" / "advice.yaml"
    rules.write_text(rules.read_text().replace("{id: wants_partner,     points: 10,",
                                               "{id: wants_partner,     points: 30,"))
    dialog = load_dialog(tmp_path / "dialogs" / "outsourcing.yaml", TEMPLATES_DIR)
    answers = {"relation": "partner"}
    before = engine.advise(answers)["readiness_score"]
    after = load_advisor(dialog).recommend(answers)["readiness_score"]
    assert after == before + 20


def test_the_same_answers_always_give_the_same_advice(engine):
    step = engine.start()
    for line in SALES_TEAM:
        step = engine.answer(step.state, line)
    assert step.kind == "finish"
    again = engine.resume(step.state)
    assert again.recommendation == step.recommendation
