"""The dialogue engine (``advisor/engine.py``): scripted walks, random walks, hints, back/skip, free text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from transitions import Machine

from advisor.advice import Advisor
from advisor.dialog import FINISH, Dialog, Question, load_dialog
from advisor.engine import ConversationState, Engine, Step
from advisor.render import TEMPLATES_DIR, Renderer
from advisor.service import DEFAULT_DIALOG

# The questionnaire, loaded once at import for the hypothesis strategies (the fixtures load the same file).
DIALOG = load_dialog(DEFAULT_DIALOG, TEMPLATES_DIR)
ALL_OPTION_VALUES = sorted({o.value for q in DIALOG.questions.values() for o in q.options})

# One reply per question for a walk that takes every question (tasks are chosen, so hours/owners/process
# follow). A team of 2-10 working 20 hours a week on these tasks: nothing here is read back.
FULL_WALK = {
    "stage": "3",
    "size": "2",
    "industry": "1",
    "core": "1",
    "pains": "my reps spend hours cold calling",
    "tasks": "1,3",
    "hours": "20",
    "owners": "1",
    "process": "2",
    "trigger": "2",
    "horizon": "2",
    "goals": "1,3",
    "past": "2",
    "relation": "3",
    "concern": "1,2",
    "contact": "Ana Ruiz, ana@example.com",
}
# The same, but "None of these" at tasks: hours, owners and process are not on this path.
NONE_WALK = {**FULL_WALK, "tasks": "12"}
# The fewest and the most questions a path through the dialog asks (NONE_WALK and FULL_WALK).
FEWEST, MOST = 13, 16


@pytest.fixture(scope="module")
def recording(dialog: Dialog) -> Engine:
    """An engine whose 'recommendation' is just the answers it was given, to see what advice is based on."""
    return Engine(dialog, lambda answers: {"answers": dict(answers)})


@pytest.fixture(scope="module")
def advising(dialog: Dialog, advisor: Advisor, renderer: Renderer) -> Engine:
    """The real advice (as the ``engine`` fixture), plus the answers it was given."""
    return Engine(dialog, lambda answers: {"answers": dict(answers),
                                           "advice": renderer.explain(advisor.recommend(answers))})


def at(question_id: str, answers: Mapping[str, Any] | None = None, **fields: Any) -> ConversationState:
    return ConversationState(current=question_id, answers=dict(answers or {}), **fields)


def walk(engine: Engine, replies: Mapping[str, str], state: ConversationState | None = None) -> list[Step]:
    """Answer each question with ``replies[question id]`` until the recommendation; every reply must be taken."""
    step = engine.start() if state is None else engine.resume(state)
    steps = [step]
    while step.kind != "finish":
        assert step.question is not None
        qid = step.question.id
        step = engine.answer(step.state, replies[qid])
        assert step.kind != "reask", (qid, replies[qid], step.hint)
        steps.append(step)
        assert len(steps) <= 20, "the walk does not end"
    return steps


def walk_to(engine: Engine, target: str, replies: Mapping[str, str] = FULL_WALK) -> Step:
    """The step asking ``target``, reached by answering with ``replies``."""
    step = engine.start()
    while step.question is not None and step.question.id != target:
        step = engine.answer(step.state, replies[step.question.id])
        assert step.kind == "ask", step.hint
    assert step.question is not None, f"{target} not on the path"
    return step


def asked(steps: list[Step]) -> list[str]:
    return [s.question.id for s in steps if s.question is not None]


def roundtrip(state: ConversationState) -> ConversationState:
    return ConversationState.from_dict(json.loads(json.dumps(state.to_dict())))


# ==============================================================================================
# Scripted walks: every question is reached; progress numbers
# ==============================================================================================
def test_the_scripted_walks_reach_every_question_of_the_dialog(engine: Engine, dialog: Dialog) -> None:
    full = walk(engine, FULL_WALK)
    without_tasks = walk(engine, NONE_WALK)
    seen = set(asked(full)) | set(asked(without_tasks))
    assert seen == set(dialog.questions)
    assert full[-1].kind == without_tasks[-1].kind == "finish"


def test_a_full_walk_asks_every_question_once_in_dialog_order(engine: Engine, dialog: Dialog) -> None:
    steps = walk(engine, FULL_WALK)
    assert asked(steps) == list(dialog.order)
    assert steps[-1].state.history == dialog.order


def test_choosing_none_of_these_tasks_skips_hours_owners_and_process(engine: Engine, dialog: Dialog) -> None:
    steps = walk(engine, NONE_WALK)
    assert asked(steps) == [q for q in dialog.order if q not in ("hours", "owners", "process")]
    assert steps[-1].state.answers["tasks"] == ["none"]


def test_a_walk_ends_in_a_recommendation_based_on_the_answers(advising: Engine) -> None:
    final = walk(advising, FULL_WALK)[-1]
    assert final.kind == "finish"
    assert final.question is None
    assert final.state.finished and final.state.current == FINISH
    assert final.recommendation["answers"] == dict(final.state.answers)
    advice = final.recommendation["advice"]
    assert 0 <= advice["readiness_score"] <= 100
    assert advice["functions"]
    assert final.state.answers["tasks"] == ["telemarketing", "lead_research"]
    assert final.state.answers["hours"] == 20


def test_the_path_lengths_of_the_dialog_are_between_13_and_16(engine: Engine, dialog: Dialog) -> None:
    assert engine.path_lengths() == (FEWEST, MOST) == (13, 16)
    assert len(dialog.order) == MOST  # the longest path asks every question
    assert len(walk(engine, FULL_WALK)) - 1 == MOST and len(walk(engine, NONE_WALK)) - 1 == FEWEST


def test_progress_number_rises_by_one_per_answer_and_total_matches_a_walk_without_late_branching(
    engine: Engine,
) -> None:
    steps = walk(engine, FULL_WALK)
    numbers = [s.number for s in steps]
    assert numbers == [*range(1, 17), 16]
    assert {s.total for s in steps} == {16}
    assert steps[-1].total == steps[-1].number == len(steps[-1].state.history) == 16


def test_progress_total_shrinks_once_none_of_these_removes_questions(engine: Engine) -> None:
    steps = walk(engine, NONE_WALK)
    by_question = {s.question.id: (s.number, s.total) for s in steps if s.question is not None}
    assert by_question["tasks"] == (6, 16)  # before the answer, the usual path is expected
    assert by_question["trigger"] == (7, 13)
    assert [s.number for s in steps] == [*range(1, 14), 13]
    assert all(FEWEST <= s.total <= MOST for s in steps)
    assert steps[-1].total == len(steps[-1].state.history) == 13


def test_a_reask_keeps_the_progress_number(engine: Engine) -> None:
    step = walk_to(engine, "core")
    again = engine.answer(step.state, "99")
    assert again.kind == "reask"
    assert (again.number, again.total) == (step.number, step.total) == (4, 16)


def test_each_answered_step_reports_the_accepted_answer(engine: Engine) -> None:
    step = engine.start()
    assert step.accepted is None
    step = engine.answer(step.state, "3")
    assert step.accepted == "growing"
    step = engine.answer(step.state, "2")
    assert step.accepted == "small"


# ==============================================================================================
# Hypothesis: random walks never raise; valid walks always end in a recommendation
# ==============================================================================================
# Arbitrary text, with Unicode "other number" characters (², ①: digits to str.isdigit, not to int) made likely
_text = st.one_of(st.text(max_size=60), st.text(alphabet="0123456789,; ²③١٢", max_size=8))
REPLIES = st.one_of(
    st.integers(-3, 16).map(str),  # valid and out-of-range option numbers
    st.lists(st.integers(0, 14), min_size=2, max_size=4).map(lambda ns: ",".join(map(str, ns))),
    st.sampled_from([
        "", "   ", "1,3", "1 3", "1;2", "yes", "ok", "skip", "lots", "about 30 hours", "1,200", "12.5", "-3",
        "👍", "🚀🔥💯", "call me", "Ana Ruiz, ana@example.com", "+44 20 7946 0958", "none", "None of these",
        "cold calling and support tickets", "we do our own bookkeeping", "startup", "1.5", "0", "5001",
        "200", "4", "5",  # many hours, a large company: read back beside some earlier answers
    ]),
    _text,
    st.tuples(st.integers(400, 1500), st.sampled_from(["x", "9", "é", "🙂", "a "])).map(lambda t: t[1] * t[0]),
)
ACTIONS = st.one_of(
    st.tuples(st.just("answer"), REPLIES),
    # "1" or "2" is a valid reply to every question (an option, a number of hours, a text): walks get far
    *[st.tuples(st.just("answer"), st.sampled_from(["1", "2"]))] * 3,
    st.tuples(st.just("back"), st.none()),
    st.tuples(st.just("skip"), st.none()),
    st.tuples(st.just("confirm"), st.none()),
    st.tuples(st.just("choose"), st.lists(st.sampled_from([*ALL_OPTION_VALUES, "bogus", ""]), max_size=3)),
)


def check_step(engine: Engine, step: Step) -> None:
    """What every step must be, whatever the person did."""
    assert isinstance(step, Step)
    state = step.state
    assert len(set(state.history)) == len(state.history), "a question answered twice on one path"
    if state.history:
        assert state.history[0] == engine.dialog.start
        # the history is the path the answers lead along, ending where the conversation stands
        for here, there in zip(state.history, (*state.history[1:], state.current), strict=True):
            assert engine.route(here, state.answers) == there
    else:
        assert state.current == engine.dialog.start
    if step.kind == "finish":
        assert step.question is None and step.hint is None
        assert state.finished
        assert step.recommendation is not None
        assert FEWEST <= len(state.history) <= MOST
        assert step.number == step.total == len(state.history)
        assert set(state.answers) <= set(state.history)
        if isinstance(step.recommendation, Mapping) and "answers" in step.recommendation:
            assert step.recommendation["answers"] == dict(state.answers)
    else:
        assert step.kind in ("ask", "reask")
        assert isinstance(step.question, Question)
        assert step.question.id == state.current
        assert step.recommendation is None
        if step.hint is not None and step.hint.code == "took_number":
            assert step.kind == "ask"  # a note above the next question, not a re-ask
        elif step.hint is None or step.hint.code != "ambiguous":  # words to ask about: arriving, or typed
            assert (step.hint is not None) == (step.kind == "reask")
        assert step.number == len(state.history) + 1
        assert 1 <= step.number <= step.total <= MOST
        # the remembered rest of the path (shared by everyone) is the one these answers take
        assert step.total == step.number + questions_ahead(engine, state)
        assert step.previous == state.answers.get(state.current)
        assert step.proposed == state.proposed
        assert all(step.question.option(v) is not None for v in step.proposed)
    if step.hint is not None and step.hint.code == "read_back":
        assert state.pending is not None and dict(step.hint.params) == dict(state.pending)
        assert state.failures == 0  # a read-back is not a mistake
    if state.pending is not None:
        # an answer read back waits for a yes at its question: the check that read it back still holds
        assert step.kind == "reask"
        question = engine.dialog.question(state.current)
        check = next(c for c in question.checks if c.id == state.pending["check"])
        assert check.when.test({**state.answers, state.current: state.pending["value"]})
    assert roundtrip(state) == state


def questions_ahead(engine: Engine, state: ConversationState) -> int:
    """Walk the rest of the path afresh: the questions after the current one, for these answers."""
    ahead, qid = 0, state.current
    while True:
        target = engine.route(qid, state.answers) or engine.dialog.question(qid).targets()[0]
        if target == FINISH:
            return ahead
        ahead, qid = ahead + 1, target


def apply(engine: Engine, step: Step, actions: list[tuple[str, Any]]) -> Step:
    for action, arg in actions:
        if action == "answer":
            step = engine.answer(step.state, arg)
        elif action == "back":
            step = engine.back(step.state)
        elif action == "skip":
            step = engine.skip(step.state)
        elif action == "confirm":
            step = engine.confirm(step.state)
        else:
            step = engine.choose(step.state, arg)
        check_step(engine, step)
    return step


@settings(max_examples=150, deadline=None)
@given(actions=st.lists(ACTIONS, min_size=10, max_size=80), after=st.lists(ACTIONS, max_size=10))
def test_random_walks_always_ask_reask_or_finish_never_raise_and_can_still_finish(
    advising: Engine, actions: list[tuple[str, Any]], after: list[tuple[str, Any]]
) -> None:
    engine = advising
    step = engine.start()
    check_step(engine, step)
    step = apply(engine, step, actions)
    event(f"random moves ended at {step.state.current}")
    event(f"waiting for a yes: {step.state.pending is not None}")
    # from wherever the moves led, valid replies ("1" suits every question; where it cannot be right
    # beside an earlier answer, it is read back and kept with a yes) reach the recommendation
    for _ in range(2 * MOST):
        if step.kind == "finish":
            break
        step = engine.answer(step.state, "1")
        if step.hint is not None and step.hint.code == "read_back":
            step = engine.answer(step.state, "yes")
        assert step.kind in ("ask", "finish"), step.hint
        check_step(engine, step)
    assert step.kind == "finish"
    # coming back to the last question and keeping its answer gives the same advice again
    again = engine.answer(engine.back(step.state).state, "")
    assert again.kind == "finish"
    assert again.state == step.state and again.recommendation == step.recommendation
    # and random moves after the recommendation (back into the dialog, or not) are just as safe
    apply(engine, again, after)


def valid_move(data: st.DataObject, question: Question) -> tuple[str, Any]:
    """A reply the question must take: ("answer", text), ("choose", values) or ("skip", None)."""
    moves: list[st.SearchStrategy[tuple[str, Any]]] = []
    count = len(question.options)
    if question.skippable:
        moves.append(st.just(("skip", None)))
    if question.type == "single":
        moves += [
            st.integers(1, count).map(lambda n: ("answer", f" {n} ")),
            st.sampled_from([o.label for o in question.options]).map(lambda label: ("answer", label)),
            st.sampled_from([o.value for o in question.options]).map(lambda v: ("choose", [v])),
        ]
    elif question.type == "multi":
        plain = [i for i, o in enumerate(question.options, 1) if not o.exclusive]
        alone = [i for i, o in enumerate(question.options, 1) if o.exclusive]
        picks = st.lists(st.sampled_from(plain), min_size=1, max_size=len(plain), unique=True)
        if alone:
            picks = st.one_of(picks, st.sampled_from(alone).map(lambda n: [n]))
        moves += [
            st.tuples(picks, st.sampled_from([",", ", ", " ", ";"])).map(
                lambda t: ("answer", t[1].join(map(str, t[0])))
            ),
            picks.map(lambda ns: ("choose", [question.options[n - 1].value for n in ns])),
        ]
    elif question.type == "number":
        low = int(question.minimum if question.minimum is not None else 0)
        high = int(question.maximum if question.maximum is not None else 10_000)
        moves += [
            st.integers(low, high).map(lambda n: ("answer", str(n))),
            st.integers(low, high).map(lambda n: ("answer", f"about {n} {question.unit}")),
        ]
    elif question.type == "text":
        moves.append(
            st.text(min_size=1, max_size=min(question.max_length, 120))
            .filter(lambda t: t.strip() != "")
            .map(lambda t: ("answer", t))
        )
    elif question.type == "contact":
        moves += [
            st.just(("answer", "1")),
            st.just(("choose", ["declined"])),
            st.just(("answer", "Ana Ruiz, ana@example.com")),
            st.just(("answer", "Tom +44 20 7946 0958")),
        ]
    return data.draw(st.one_of(moves), label=question.id)


def make_move(engine: Engine, step: Step, move: str, arg: Any) -> Step:
    if move == "answer":
        return engine.answer(step.state, arg)
    if move == "choose":
        return engine.choose(step.state, arg)
    return engine.skip(step.state)


INVALID = {"single": "99", "multi": "0", "number": "lots", "text": "   ", "contact": "call me"}


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_any_walk_of_valid_answers_ends_in_a_recommendation_after_13_to_16_questions(
    advising: Engine, data: st.DataObject
) -> None:
    engine = advising
    step = engine.start()
    answered = 0
    while step.kind != "finish":
        question = step.question
        assert question is not None
        if data.draw(st.booleans(), label="stumble first"):
            wrong = engine.answer(step.state, INVALID[question.type])
            assert wrong.kind == "reask" and wrong.state.history == step.state.history
            step = wrong
        move, arg = valid_move(data, question)
        before = step.state
        step = make_move(engine, step, move, arg)
        if step.kind == "reask":  # a valid answer that can't be right beside an earlier one: read back
            assert step.hint is not None and step.hint.code == "read_back", (question.id, move, arg, step.hint)
            assert step.state.pending is not None and step.hint.params == step.state.pending
            assert step.state.current == question.id and step.state.history == before.history
            assert step.state.answers == before.answers  # not stored until confirmed
            assert step.state.failures == 0
            check_step(engine, step)
            value = step.state.pending["value"]
            event(f"read back at {question.id}")
            keep = data.draw(st.sampled_from(["confirm", "yes", "", "same"]), label="keep it")
            if keep == "confirm":
                step = engine.confirm(step.state)
            elif keep == "same" and move == "choose":  # the same button again
                step = make_move(engine, step, move, arg)
            else:  # (the same typed reply is read back again: see test_yes_or_the_same_answer_keeps_...)
                step = engine.answer(step.state, "yes" if keep == "same" else keep)
            assert step.state.answers[question.id] == value
        assert step.kind in ("ask", "finish"), (question.id, move, arg, step.hint)
        assert len(step.state.history) == len(before.history) + 1
        assert step.state.failures == 0 and step.state.pending is None
        answered += 1
        check_step(engine, step)
        assert answered <= MOST
    assert FEWEST <= len(step.state.history) == answered <= MOST
    assert step.recommendation is not None


# ==============================================================================================
# One shared transitions Machine; states survive the store
# ==============================================================================================
def test_the_engine_has_one_machine_with_no_models(engine: Engine) -> None:
    assert isinstance(engine.machine, Machine)
    assert engine.machine.models == []


def test_stepping_many_conversations_adds_no_models_to_the_shared_machine(dialog: Dialog) -> None:
    engine = Engine(dialog, lambda answers: {"answers": dict(answers)})
    machine = engine.machine
    before = list(machine.models)
    replies = list(FULL_WALK.values())
    states = [engine.start().state for _ in range(30)]
    # interleave the conversations: each one a different number of steps ahead
    for round_ in range(len(replies)):
        for i, state in enumerate(states):
            if i % (round_ + 1) == 0 and not state.finished:
                states[i] = engine.answer(state, FULL_WALK[state.current]).state
    assert engine.machine is machine
    assert machine.models == before == []
    for state in states:  # each conversation went its own way, untouched by the others
        assert state.history == DIALOG.order[: len(state.history)]
        expected = FINISH if len(state.history) == len(DIALOG.order) else DIALOG.order[len(state.history)]
        assert state.current == expected


def test_route_is_a_pure_lookup_on_the_shared_machine(engine: Engine) -> None:
    assert engine.route("tasks", {"tasks": ["none"]}) == "trigger"
    assert engine.route("tasks", {"tasks": ["telemarketing"]}) == "hours"
    assert engine.route("tasks", {"tasks": ["none"]}) == "trigger"
    assert engine.route("contact", {}) == FINISH
    assert engine.machine.models == []


def test_a_state_survives_a_json_round_trip_and_resumes_at_the_same_question(engine: Engine) -> None:
    step = walk_to(engine, "tasks")  # pains pre-selected telemarketing: proposed is part of the state
    step = engine.answer(step.state, "99")  # and one failure
    state = step.state
    assert state.proposed == ("telemarketing",) and state.failures == 1
    restored = roundtrip(state)
    assert restored == state
    resumed = engine.resume(restored)
    assert resumed.question is not None and resumed.question.id == "tasks"
    assert (resumed.number, resumed.total, resumed.proposed) == (step.number, step.total, step.proposed)
    # and the restored conversation carries on exactly as the original would
    assert engine.answer(restored, "yes").state == engine.answer(state, "yes").state


def test_a_state_with_every_kind_of_answer_survives_a_json_round_trip(engine: Engine) -> None:
    answers = {"stage": "early", "tasks": ["bookkeeping", "recruiting"], "hours": 12.5, "pains": None,
               "contact": {"name": "Ana Ruiz", "email": "ana@example.com", "phone": None, "consent": True}}
    state = at("owners", answers, history=("stage", "size"), failures=2, proposed=())
    assert roundtrip(state) == state
    assert roundtrip(state).to_dict() == state.to_dict()


def test_a_finished_state_resumes_with_its_recommendation(engine: Engine) -> None:
    final = walk(engine, FULL_WALK)[-1]
    resumed = engine.resume(roundtrip(final.state))
    assert resumed.kind == "finish"
    assert resumed.state == final.state
    assert resumed.recommendation == final.recommendation


def test_a_resumed_question_shows_the_same_previous_answer(engine: Engine) -> None:
    step = walk_to(engine, "pains")
    back = engine.back(step.state)
    resumed = engine.resume(roundtrip(back.state))
    assert resumed.question is not None and resumed.question.id == "core"
    assert resumed.previous == back.previous == "sales"


# ==============================================================================================
# Invalid answers: a specific hint, then examples, then an offer to skip
# ==============================================================================================
def test_enter_at_the_optional_contact_question_leaves_it_out(engine: Engine) -> None:
    # a consultant's console walk: Enter at "Last step, optional" was refused ("I need an email ...")
    step = engine.answer(at("contact", {"stage": "growing"}), "")
    assert step.kind == "finish" and step.state.answers["contact"] is None


@pytest.mark.parametrize(
    ("qid", "reply", "code", "params"),
    [
        ("stage", "9", "out_of_range", {"low": 1, "high": 4}),
        ("stage", "0", "out_of_range", {"low": 1, "high": 4}),
        ("tasks", "1,13", "out_of_range", {"low": 1, "high": 12}),
        ("stage", "1,2", "one_only", {"count": 4}),
        ("stage", "1 2", "one_only", {"count": 4}),
        ("stage", "", "empty", {"count": 4}),
        ("stage", "yes", "empty", {"count": 4}),
        ("stage", "purple elephants", "not_an_option", {"count": 4}),
        ("stage", "👍", "not_an_option", {"count": 4}),
        ("stage", "-3", "not_an_option", {"count": 4}),
        ("tasks", "1,12", "exclusive", {"label": "None of these"}),
        ("hours", "lots", "not_a_number", {"unit": "hours a week"}),
        ("hours", "", "not_a_number", {"unit": "hours a week"}),
        ("hours", "-3", "number_range", {"low": 1, "high": 5000, "unit": "hours a week"}),
        ("hours", "0", "number_range", {"low": 1, "high": 5000, "unit": "hours a week"}),
        ("hours", "5001", "number_range", {"low": 1, "high": 5000, "unit": "hours a week"}),
        ("pains", "", "empty_text", {}),
        ("pains", "   ", "empty_text", {}),
        ("contact", "call me", "no_contact", {}),
        ("contact", "2", "out_of_range", {"low": 1, "high": 1}),
        ("stage", "x" * 501, "too_long", {"limit": 500}),
        ("pains", "word " * 101, "too_long", {"limit": 500}),
        ("hours", "1" * 501, "too_long", {"limit": 500}),
    ],
)
def test_a_first_invalid_reply_is_reasked_with_a_specific_hint(
    engine: Engine, qid: str, reply: str, code: str, params: dict[str, Any]
) -> None:
    state = at(qid, {"stage": "growing"} if qid != "stage" else {})
    step = engine.answer(state, reply)
    assert step.kind == "reask"
    assert step.question is not None and step.question.id == qid
    assert step.hint is not None
    assert step.hint.code == code
    assert dict(step.hint.params) == params
    assert step.hint.examples == ()
    assert step.hint.offer_skip is False
    assert step.state.failures == 1
    assert step.state.answers == state.answers and step.state.history == state.history
    assert step.accepted is None


def test_a_reply_of_exactly_max_length_is_not_too_long(engine: Engine) -> None:
    step = engine.answer(at("pains"), "x" * 500)
    assert step.kind == "ask" and step.state.answers["pains"] == "x" * 500


def test_surrounding_whitespace_does_not_count_towards_max_length(engine: Engine) -> None:
    step = engine.answer(at("pains"), "  " + "x" * 500 + "\n")
    assert step.kind == "ask" and step.state.answers["pains"] == "x" * 500


@pytest.mark.parametrize(
    ("qid", "reply", "examples"),
    [
        ("stage", "9", ("1", "4")),  # no examples in the dialog: the first and last option
        ("tasks", "99", ("1,3", "2")),
        ("hours", "lots", ("12", "40")),
        ("pains", "", ("our engineers answer support tickets all day",
                       "the sales team does its own lead research and social media")),
        ("contact", "call me", ("Ana Ruiz, ana@example.com", "Tom +44 20 7946 0958")),
    ],
)
def test_a_second_invalid_reply_in_a_row_adds_examples(
    engine: Engine, qid: str, reply: str, examples: tuple[str, ...]
) -> None:
    first = engine.answer(at(qid), reply)
    second = engine.answer(first.state, reply)
    assert second.kind == "reask"
    assert second.state.failures == 2
    assert second.hint is not None
    assert second.hint.code == first.hint.code  # type: ignore[union-attr]
    assert second.hint.examples == examples
    assert second.hint.offer_skip is False


@pytest.mark.parametrize(
    ("qid", "reply", "skippable"),
    [
        ("hours", "lots", True),
        ("pains", "", True),
        ("contact", "call me", True),
        ("stage", "9", False),
        ("tasks", "99", False),
        ("goals", "nonsense", False),
    ],
)
def test_a_third_invalid_reply_offers_to_skip_only_where_the_question_is_skippable(
    engine: Engine, dialog: Dialog, qid: str, reply: str, skippable: bool
) -> None:
    assert dialog.question(qid).skippable is skippable
    step = engine.answer(at(qid), reply)
    step = engine.answer(step.state, reply)
    third = engine.answer(step.state, reply)
    assert third.kind == "reask"
    assert third.state.failures == 3
    assert third.hint is not None
    assert third.hint.offer_skip is skippable
    assert third.hint.examples  # still shown
    fourth = engine.answer(third.state, reply)
    assert fourth.hint is not None and fourth.hint.offer_skip is skippable and fourth.state.failures == 4


def test_different_invalid_replies_in_a_row_count_together(engine: Engine) -> None:
    step = engine.answer(at("hours"), "lots")
    step = engine.answer(step.state, "-3")
    assert step.hint is not None and step.hint.code == "number_range" and step.hint.examples == ("12", "40")
    step = engine.answer(step.state, "")
    assert step.hint is not None and step.hint.code == "not_a_number" and step.hint.offer_skip


def test_a_valid_answer_resets_failures(engine: Engine) -> None:
    step = engine.answer(at("hours"), "lots")
    step = engine.answer(step.state, "lots")
    assert step.state.failures == 2
    step = engine.answer(step.state, "10")
    assert step.kind == "ask" and step.question is not None and step.question.id == "owners"
    assert step.state.failures == 0
    nxt = engine.answer(step.state, "99")  # the next question starts counting from scratch
    assert nxt.state.failures == 1 and nxt.hint is not None and nxt.hint.examples == ()


def test_skip_on_a_question_that_cannot_be_skipped_is_refused(engine: Engine) -> None:
    state = at("stage")
    step = engine.skip(state)
    assert step.kind == "reask"
    assert step.hint is not None and step.hint.code == "cannot_skip"
    assert step.state.current == "stage" and step.state.answers == {}
    assert step.state.failures == 0  # not the person's mistake in answering


@pytest.mark.parametrize(("qid", "then"), [("hours", "owners"), ("pains", "tasks"), ("contact", FINISH)])
def test_skip_on_a_skippable_question_stores_none_and_moves_on(engine: Engine, qid: str, then: str) -> None:
    state = at(qid, {"stage": "early"}, history=(), failures=2)
    step = engine.skip(state)
    assert step.kind in ("ask", "finish")
    assert step.state.current == then
    assert step.state.answers[qid] is None
    assert step.state.history[-1] == qid
    assert step.state.failures == 0


def test_skipping_pains_leaves_nothing_preselected_on_tasks(engine: Engine) -> None:
    step = walk_to(engine, "pains")
    step = engine.skip(step.state)
    assert step.question is not None and step.question.id == "tasks"
    assert step.proposed == ()
    assert engine.answer(step.state, "").hint.code == "empty"  # type: ignore[union-attr]


def test_skipping_contact_finishes_with_contact_none(engine: Engine) -> None:
    step = walk_to(engine, "contact")
    final = engine.skip(step.state)
    assert final.kind == "finish"
    assert final.state.answers["contact"] is None
    assert final.recommendation is not None


# ==============================================================================================
# back
# ==============================================================================================
def test_back_at_the_first_question_reasks_with_the_at_start_hint(engine: Engine) -> None:
    start = engine.start()
    step = engine.back(start.state)
    assert step.kind == "reask"
    assert step.question is not None and step.question.id == "stage"
    assert step.hint is not None and step.hint.code == "at_start"
    assert step.state == start.state  # failures unchanged: not an invalid answer


def test_back_returns_to_the_previously_answered_question_showing_its_answer(engine: Engine) -> None:
    step = walk_to(engine, "pains")
    assert step.state.history == ("stage", "size", "industry", "core")
    back = engine.back(step.state)
    assert back.kind == "ask"
    assert back.question is not None and back.question.id == "core"
    assert back.previous == "sales"
    assert back.state.history == ("stage", "size", "industry")
    assert back.number == 4
    assert back.state.answers == step.state.answers  # nothing forgotten


def test_back_after_an_invalid_reply_clears_the_failures(engine: Engine) -> None:
    step = walk_to(engine, "pains")
    step = engine.answer(step.state, "")
    assert step.state.failures == 1
    back = engine.back(step.state)
    assert back.state.failures == 0 and back.hint is None


def test_answers_given_later_are_kept_after_back_and_shown_on_arriving_again(engine: Engine) -> None:
    step = walk_to(engine, "tasks")
    kept = dict(step.state.answers)
    for _ in range(4):
        step = engine.back(step.state)
    assert step.question is not None and step.question.id == "size"
    assert step.state.answers == kept  # industry, core and pains are still there
    # answering differently here: the later answers still wait for the person
    step = engine.answer(step.state, "4")
    assert step.state.answers["size"] == "large"
    assert step.question is not None and step.question.id == "industry"
    assert step.previous == "software"
    step = engine.answer(step.state, "")
    assert step.question is not None and step.question.id == "core"
    assert step.previous == "sales"
    step = engine.answer(step.state, "")
    assert step.question is not None and step.question.id == "pains"
    assert step.previous == FULL_WALK["pains"]


@pytest.mark.parametrize(
    ("qid", "expected"),
    [
        ("stage", "growing"),
        ("industry", "software"),
        ("core", "sales"),
        ("pains", FULL_WALK["pains"]),
        ("tasks", ["telemarketing", "lead_research"]),
        ("hours", 20),
        ("process", "partly"),
        ("goals", ["core_time", "valuation"]),
        ("contact", {"name": "Ana Ruiz", "email": "ana@example.com", "phone": None, "consent": True}),
    ],
)
def test_enter_at_a_question_with_a_previous_answer_keeps_it(engine: Engine, qid: str, expected: Any) -> None:
    final = walk(engine, FULL_WALK)[-1]
    step = final
    while step.question is None or step.question.id != qid:
        step = engine.back(step.state)
    assert step.previous == expected
    again = engine.answer(step.state, "")
    assert again.kind in ("ask", "finish")
    assert again.accepted == expected
    assert again.state.answers[qid] == expected
    assert again.state.history[-1] == qid


def test_back_after_the_recommendation_returns_to_the_last_question(engine: Engine) -> None:
    final = walk(engine, FULL_WALK)[-1]
    step = engine.back(final.state)
    assert step.kind == "ask"
    assert step.question is not None and step.question.id == "contact"
    assert step.number == step.total == 16
    assert engine.answer(step.state, "1").state.answers["contact"] == "declined"


def test_changing_an_earlier_answer_changes_the_path_and_drops_answers_no_longer_on_it(
    recording: Engine,
) -> None:
    step = walk_to(recording, "goals")
    assert {"hours", "owners", "process", "trigger", "horizon"} <= set(step.state.answers)
    while step.question is None or step.question.id != "tasks":
        step = recording.back(step.state)
    assert step.previous == ["telemarketing", "lead_research"]
    step = recording.answer(step.state, "12")  # None of these
    assert step.question is not None and step.question.id == "trigger"  # hours, owners and process skipped
    assert step.previous == "cost_pressure"  # the later answers are still offered
    assert step.state.history == ("stage", "size", "industry", "core", "pains", "tasks")
    assert (step.number, step.total) == (7, 13)
    assert step.state.answers["hours"] == 20  # kept, in case the person goes back again
    while step.kind != "finish":  # Enter keeps what was answered; the rest is answered afresh
        assert step.question is not None
        qid = step.question.id
        step = recording.answer(step.state, "" if step.previous is not None else FULL_WALK[qid])
        assert step.kind != "reask", (qid, step.hint)
    for dropped in ("hours", "owners", "process"):
        assert dropped not in step.state.history
        assert dropped not in step.state.answers
        assert dropped not in step.recommendation["answers"]
    assert step.recommendation["answers"]["tasks"] == ["none"]
    assert step.recommendation["answers"]["trigger"] == "cost_pressure"
    assert len(step.state.history) == 13


# ==============================================================================================
# Read-back: an answer that can't be right beside an earlier one waits for a yes
# ==============================================================================================
# question: (replies leading there, a reply read back there, the value it gives, the check that holds)
READ_BACKS = {
    "size": ({**FULL_WALK, "stage": "1"}, "4", "large", "pre_launch_but_large"),
    "hours": (FULL_WALK, "200", 200, "hours_beyond_team"),
    "owners": ({**FULL_WALK, "size": "1"}, "2", "in_house_staff", "staff_but_solo"),
}


def read_back(engine: Engine, qid: str) -> tuple[Step, Step]:
    """The step asking ``qid`` and the read-back of READ_BACKS[qid]'s reply given to it."""
    replies, reply, value, check = READ_BACKS[qid]
    asking = walk_to(engine, qid, replies)
    step = engine.answer(asking.state, reply)
    assert step.kind == "reask" and step.hint is not None and step.hint.code == "read_back", step.hint
    assert dict(step.hint.params) == {"check": check, "value": value}
    return asking, step


@pytest.mark.parametrize("qid", list(READ_BACKS))
def test_an_answer_that_cannot_be_right_beside_an_earlier_one_is_read_back_at_the_same_question(
    engine: Engine, qid: str
) -> None:
    asking, step = read_back(engine, qid)
    _, _, value, check = READ_BACKS[qid]
    assert step.question is not None and step.question.id == qid
    assert step.state.pending == {"check": check, "value": value}
    assert step.state.current == qid and step.state.history == asking.state.history
    assert qid not in step.state.answers  # not stored until confirmed
    assert step.state.answers == asking.state.answers
    assert step.accepted is None
    assert (step.number, step.total) == (asking.number, asking.total)
    assert step.hint is not None and step.hint.examples == () and step.hint.offer_skip is False


def test_hours_beyond_what_the_team_has_are_read_back_before_moving_on(engine: Engine) -> None:
    step = walk_to(engine, "hours")  # a team of 2-10
    step = engine.answer(step.state, "lots")
    step = engine.answer(step.state, "lots")
    assert step.state.failures == 2
    step = engine.answer(step.state, "about 200 hours")
    assert step.kind == "reask" and step.question is not None and step.question.id == "hours"
    assert step.hint is not None and step.hint.code == "read_back"
    assert dict(step.hint.params) == {"check": "hours_beyond_team", "value": 200}
    assert step.state.failures == 0  # a read-back is not a mistake
    assert "hours" not in step.state.answers


@pytest.mark.parametrize(
    ("size", "most", "beyond"),
    [("solo", 40, 41), ("small", 120, 121), ("medium", 600, 601), ("large", 3000, 3001), ("enterprise", 5000, None)],
)
def test_hours_are_read_back_only_beyond_what_a_team_of_that_size_has(
    engine: Engine, size: str, most: int, beyond: int | None
) -> None:
    state = at("hours", {"size": size})
    within = engine.answer(state, str(most))
    assert within.kind == "ask" and within.state.answers["hours"] == most, within.hint
    if beyond is not None:
        step = engine.answer(state, str(beyond))
        assert step.hint is not None and step.hint.code == "read_back"
        assert step.state.pending == {"check": "hours_beyond_team", "value": beyond}
    assert engine.answer(at("hours"), "5000").kind == "ask"  # no size given: nothing to compare with


@pytest.mark.parametrize(
    ("qid", "answers", "reply", "read"),
    [
        ("size", {"stage": "pre_launch"}, "4", True),
        ("size", {"stage": "pre_launch"}, "5", True),
        ("size", {"stage": "pre_launch"}, "3", False),
        ("size", {"stage": "growing"}, "5", False),
        ("owners", {"size": "solo"}, "2", True),
        ("owners", {"size": "solo"}, "1", False),
        ("owners", {"size": "small"}, "2", False),
    ],
)
def test_a_large_pre_launch_company_and_hired_staff_of_someone_alone_are_read_back(
    engine: Engine, qid: str, answers: dict[str, Any], reply: str, read: bool
) -> None:
    step = engine.answer(at(qid, answers), reply)
    if read:
        assert step.hint is not None and step.hint.code == "read_back"
        assert step.state.current == qid and qid not in step.state.answers
    else:
        assert step.kind == "ask", step.hint
        assert step.state.pending is None and qid in step.state.answers


@pytest.mark.parametrize(
    ("qid", "keep"),
    [
        *[(qid, keep) for qid in READ_BACKS for keep in ("confirm", "yes", " OK ", "")],
        *[(qid, "same reply") for qid in READ_BACKS],
        ("size", "same button"),
        ("owners", "same button"),
    ],
)
def test_yes_or_the_same_answer_keeps_an_answer_read_back(engine: Engine, qid: str, keep: str) -> None:
    asking, step = read_back(engine, qid)
    _, reply, value, _ = READ_BACKS[qid]
    if keep == "confirm":
        kept = engine.confirm(step.state)
    elif keep == "same reply":
        kept = engine.answer(step.state, reply)
    elif keep == "same button":
        kept = engine.choose(step.state, [value])
    else:
        kept = engine.answer(step.state, keep)
    assert kept.kind == "ask", kept.hint
    assert kept.accepted == value
    assert kept.state.answers[qid] == value
    assert kept.state.pending is None and kept.state.failures == 0
    assert kept.state.history == (*asking.state.history, qid)
    assert kept.state.current == engine.route(qid, kept.state.answers) != qid
    assert kept.number == asking.number + 1


def test_another_answer_after_a_read_back_is_checked_again(engine: Engine) -> None:
    _, step = read_back(engine, "hours")  # 200 hours for a team of 2-10
    again = engine.answer(step.state, "300")
    assert again.hint is not None and again.hint.code == "read_back"
    assert again.state.pending == {"check": "hours_beyond_team", "value": 300}
    assert "hours" not in again.state.answers
    fits = engine.answer(again.state, "50")
    assert fits.kind == "ask" and fits.question is not None and fits.question.id == "owners"
    assert fits.state.answers["hours"] == 50 and fits.state.pending is None
    # on a choice question: another option that fits is simply taken
    _, step = read_back(engine, "size")  # pre-launch with 51-250 people
    other = engine.answer(step.state, "2")
    assert other.kind == "ask" and other.state.answers["size"] == "small" and other.state.pending is None


def test_no_after_a_read_back_asks_for_the_right_answer_without_counting_a_mistake(engine: Engine) -> None:
    _, step = read_back(engine, "hours")
    no = engine.answer(step.state, "no")
    assert no.kind == "reask" and no.hint is not None and no.hint.code == "change_it"
    assert no.state.pending is None and no.state.failures == 0 and "hours" not in no.state.answers
    assert engine.answer(no.state, "30").state.answers["hours"] == 30


def test_resuming_while_an_answer_waits_for_a_yes_reads_it_back_again(engine: Engine) -> None:
    _, step = read_back(engine, "hours")
    again = engine.resume(ConversationState.from_dict(json.loads(json.dumps(step.state.to_dict()))))
    assert again.hint is not None and again.hint.code == "read_back"
    assert again.hint.params == step.state.pending


def test_an_invalid_reply_after_a_read_back_drops_it_and_a_later_yes_keeps_nothing(engine: Engine) -> None:
    _, step = read_back(engine, "hours")
    wrong = engine.answer(step.state, "lots")
    assert wrong.kind == "reask" and wrong.hint is not None and wrong.hint.code == "not_a_number"
    assert wrong.state.pending is None and wrong.state.failures == 1
    assert "hours" not in wrong.state.answers
    yes = engine.answer(wrong.state, "yes")  # nothing waits for a yes any more
    assert yes.kind == "reask" and yes.hint is not None and yes.hint.code == "not_a_number"
    assert "hours" not in yes.state.answers


def test_back_and_skip_clear_an_answer_waiting_for_a_yes(engine: Engine) -> None:
    asking, step = read_back(engine, "hours")
    skipped = engine.skip(step.state)
    assert skipped.kind == "ask" and skipped.question is not None and skipped.question.id == "owners"
    assert skipped.state.answers["hours"] is None and skipped.state.pending is None
    back = engine.back(step.state)
    assert back.kind == "ask" and back.question is not None and back.question.id == "tasks"
    assert back.state.pending is None and back.hint is None
    assert back.state.answers == asking.state.answers  # the answer read back was not kept
    # coming forward again, the question is asked afresh: a yes no longer keeps 200
    forward = engine.answer(back.state, "")
    assert forward.question is not None and forward.question.id == "hours"
    assert forward.state.pending is None and forward.previous is None
    assert engine.answer(forward.state, "yes").hint.code == "not_a_number"  # type: ignore[union-attr]


def test_toggling_an_option_clears_an_answer_waiting_for_a_yes(engine: Engine) -> None:
    # no multi-choice question has checks in this dialog: the waiting answer is set by hand
    state = at("goals", pending={"check": "made_up", "value": ["cut_costs"]})
    step = engine.toggle(state, "scale")
    assert step.state.pending is None and step.proposed == ("scale",)


def test_a_pending_read_back_survives_a_json_round_trip(engine: Engine) -> None:
    _, step = read_back(engine, "hours")
    state = step.state
    assert state.to_dict()["pending"] == {"check": "hours_beyond_team", "value": 200}
    restored = roundtrip(state)
    assert restored == state and restored.pending == {"check": "hours_beyond_team", "value": 200}
    # and the restored conversation carries on exactly as the original would
    assert engine.confirm(restored).state == engine.confirm(state).state
    assert engine.answer(restored, "yes").state.answers["hours"] == 200
    # a state stored before read-backs existed has nothing pending
    old = {k: v for k, v in at("hours", {"size": "small"}).to_dict().items() if k != "pending"}
    assert ConversationState.from_dict(old).pending is None


def test_confirm_with_nothing_pending_just_asks_again(engine: Engine) -> None:
    step = walk_to(engine, "hours")
    again = engine.confirm(step.state)
    assert again.kind == "ask" and again.hint is None
    assert again.state == step.state
    assert (again.question, again.number, again.total) == (step.question, step.number, step.total)
    final = walk(engine, FULL_WALK)[-1]
    assert engine.confirm(final.state).kind == "finish"


def test_an_answer_read_back_replaces_the_earlier_answer_only_once_confirmed(engine: Engine) -> None:
    step = walk_to(engine, "owners")  # 20 hours answered
    step = engine.back(step.state)
    assert step.question is not None and step.question.id == "hours" and step.previous == 20
    step = engine.answer(step.state, "200")
    assert step.hint is not None and step.hint.code == "read_back"
    assert step.state.answers["hours"] == 20 and step.previous == 20  # still the earlier answer
    kept = engine.confirm(step.state)
    assert kept.state.answers["hours"] == 200


def test_a_kept_answer_that_no_longer_fits_a_changed_earlier_answer_is_read_back(engine: Engine) -> None:
    # 2-10 people whose staff does the tasks; then the size is changed to "just me"
    step = walk_to(engine, "process", {**FULL_WALK, "owners": "2"})
    while step.question is None or step.question.id != "size":
        step = engine.back(step.state)
    step = engine.answer(step.state, "1")
    while step.question is not None and step.question.id != "owners":  # Enter keeps each answer
        step = engine.answer(step.state, "")
        assert step.kind == "ask", step.hint
    assert step.previous == "in_house_staff"
    step = engine.answer(step.state, "")
    assert step.hint is not None and step.hint.code == "read_back"
    assert step.state.pending == {"check": "staff_but_solo", "value": "in_house_staff"}
    assert engine.answer(step.state, "").state.current == "process"  # a second Enter says yes


# ==============================================================================================
# Free text understanding
# ==============================================================================================
def test_pains_in_own_words_preselect_the_matching_tasks(engine: Engine) -> None:
    step = walk_to(engine, "pains")
    step = engine.answer(step.state, "my reps spend hours cold calling")
    assert step.kind == "ask"
    assert step.question is not None and step.question.id == "tasks"
    assert step.proposed == ("telemarketing",)
    assert step.state.proposed == ("telemarketing",)
    assert step.previous is None


@pytest.mark.parametrize("confirm", ["", "yes", "Yes", "ok", " y "])
def test_an_empty_reply_or_yes_confirms_the_preselected_tasks(engine: Engine, confirm: str) -> None:
    step = walk_to(engine, "tasks")
    assert step.proposed == ("telemarketing",)
    step = engine.answer(step.state, confirm)
    assert step.question is not None and step.question.id == "hours"
    assert step.state.answers["tasks"] == ["telemarketing"]
    assert step.state.proposed == ()


def test_typed_numbers_override_the_preselected_tasks(engine: Engine) -> None:
    step = walk_to(engine, "tasks")
    step = engine.answer(step.state, "7,8")
    assert step.state.answers["tasks"] == ["customer_support", "bookkeeping"]
    assert step.state.proposed == ()


def test_free_text_on_the_tasks_question_is_understood_and_confirmed_with_yes(engine: Engine) -> None:
    step = walk_to(engine, "tasks", {**FULL_WALK, "pains": "we sell shoes"})
    assert step.proposed == ()
    step = engine.answer(step.state, "we do our own bookkeeping and support tickets")
    assert step.kind == "reask"
    assert step.hint is not None and step.hint.code == "understood"
    assert step.proposed == ("customer_support", "bookkeeping")
    assert step.state.failures == 0  # understood is not a mistake
    assert step.state.answers.get("tasks") is None
    confirmed = engine.answer(step.state, "yes")
    assert confirmed.question is not None and confirmed.question.id == "hours"
    assert confirmed.state.answers["tasks"] == ["customer_support", "bookkeeping"]


def test_numbers_typed_after_an_understood_proposal_override_it(engine: Engine) -> None:
    step = engine.answer(at("tasks"), "we do our own bookkeeping and support tickets")
    step = engine.answer(step.state, "3")
    assert step.state.answers["tasks"] == ["lead_research"]


def test_an_understood_proposal_survives_an_invalid_reply(engine: Engine) -> None:
    step = engine.answer(at("tasks"), "support tickets")
    step = engine.answer(step.state, "99")
    assert step.hint is not None and step.hint.code == "out_of_range"
    assert step.proposed == ("customer_support",)
    assert engine.answer(step.state, "").state.answers["tasks"] == ["customer_support"]


def test_free_text_on_a_single_question_proposes_one_option(engine: Engine) -> None:
    step = engine.answer(at("stage"), "we are a startup")
    assert step.hint is not None and step.hint.code == "understood"
    assert step.proposed == ("early",)
    assert engine.answer(step.state, "yes").state.answers["stage"] == "early"


def test_free_text_matching_two_options_of_a_single_question_is_asked_about_not_guessed(engine: Engine) -> None:
    step = engine.answer(at("stage"), "growing and established")
    assert step.hint is not None and step.hint.code == "ambiguous"
    assert step.hint.params == {"words": "growing and established", "values": ["growing", "established"]}
    assert step.proposed == () and "stage" not in step.state.answers


def test_an_option_label_typed_in_full_is_taken_directly(engine: Engine) -> None:
    step = engine.answer(at("tasks"), "Customer support")
    assert step.kind == "ask" and step.state.answers["tasks"] == ["customer_support"]
    step = engine.answer(at("size"), "just me")
    assert step.state.answers["size"] == "solo"


# ==============================================================================================
# choose(): button presses
# ==============================================================================================
def test_choose_takes_a_button_value(engine: Engine) -> None:
    step = engine.choose(at("stage"), ["growing"])
    assert step.kind == "ask"
    assert step.state.answers["stage"] == "growing" and step.accepted == "growing"
    assert step.question is not None and step.question.id == "size"


def test_choose_takes_several_values_on_a_multi_question_once_each(engine: Engine) -> None:
    step = engine.choose(at("tasks"), ["telemarketing", "lead_research", "telemarketing"])
    assert step.state.answers["tasks"] == ["telemarketing", "lead_research"]


def test_choose_an_unknown_value_is_refused_with_not_an_option(engine: Engine) -> None:
    step = engine.choose(at("stage"), ["bogus"])
    assert step.kind == "reask"
    assert step.hint is not None and step.hint.code == "not_an_option"
    assert dict(step.hint.params) == {"count": 4}
    assert step.state.failures == 1 and step.state.answers == {}


@pytest.mark.parametrize(("qid", "foreign"), [("stage", ["solo"]), ("size", ["growing"]),
                                              ("tasks", ["telemarketing", "quality"]), ("past", ["vendor"])])
def test_choose_refuses_values_of_another_question(engine: Engine, qid: str, foreign: list[str]) -> None:
    step = engine.choose(at(qid), foreign)
    assert step.kind == "reask"
    assert step.hint is not None and step.hint.code == "not_an_option"
    assert step.state.current == qid and qid not in step.state.answers


def test_choose_two_values_on_a_single_question_is_refused(engine: Engine) -> None:
    step = engine.choose(at("stage"), ["early", "growing"])
    assert step.hint is not None and step.hint.code == "one_only"


def test_choose_an_exclusive_option_with_others_is_refused(engine: Engine) -> None:
    step = engine.choose(at("tasks"), ["none", "telemarketing"])
    assert step.hint is not None and step.hint.code == "exclusive"
    assert dict(step.hint.params) == {"label": "None of these"}


def test_choose_nothing_or_on_a_question_without_options_is_refused(engine: Engine) -> None:
    assert engine.choose(at("tasks"), []).hint.code == "empty"  # type: ignore[union-attr]
    assert engine.choose(at("hours"), ["10"]).hint.code == "empty"  # type: ignore[union-attr]


def test_choose_declined_at_contact_finishes(engine: Engine) -> None:
    step = walk_to(engine, "contact")
    final = engine.choose(step.state, ["declined"])
    assert final.kind == "finish"
    assert final.state.answers["contact"] == "declined"


def test_moves_on_a_finished_conversation_just_show_the_recommendation(engine: Engine) -> None:
    final = walk(engine, FULL_WALK)[-1]
    for step in (engine.answer(final.state, "1"), engine.choose(final.state, ["early"]),
                 engine.skip(final.state)):
        assert step.kind == "finish"
        assert step.state == final.state
        assert step.recommendation == final.recommendation


# ==============================================================================================
# Parsing numbers and contacts
# ==============================================================================================
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("about 30 hours", 30),
        ("1,200", 1200),
        ("12.5", 12.5),
        ("40", 40),
        ("  7 ", 7),
        ("1,200.5", 1200.5),
        ("around 2,000 a week", 2000),
        ("5000", 5000),
        ("1", 1),
    ],
)
def test_numbers_are_read_from_the_reply(engine: Engine, reply: str, expected: float) -> None:
    step = engine.answer(at("hours"), reply)
    assert step.kind == "ask", step.hint
    assert step.accepted == expected
    assert step.state.answers["hours"] == expected
    assert type(step.state.answers["hours"]) is type(expected)  # whole numbers are stored as int


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Ana Ruiz, ana@example.com",
         {"name": "Ana Ruiz", "email": "ana@example.com", "phone": None, "consent": True}),
        ("+44 20 7946 0958", {"name": None, "email": None, "phone": "+442079460958", "consent": True}),
        ("Tom +44 20 7946 0958", {"name": "Tom", "email": None, "phone": "+442079460958", "consent": True}),
        ("ana.ruiz+advice@mail.example.co.uk",
         {"name": None, "email": "ana.ruiz+advice@mail.example.co.uk", "phone": None, "consent": True}),
        ("Ana; ana@example.com; 020 7946-0958",
         {"name": "Ana", "email": "ana@example.com", "phone": "02079460958", "consent": True}),
    ],
)
def test_contacts_are_read_from_the_reply(engine: Engine, reply: str, expected: dict[str, Any]) -> None:
    step = engine.answer(at("contact"), reply)
    assert step.kind == "finish", step.hint
    assert step.state.answers["contact"] == expected


@pytest.mark.parametrize("reply", ["1", "No thanks, just show me the advice", "declined"])
def test_the_no_thanks_option_at_contact_is_stored_as_declined(engine: Engine, reply: str) -> None:
    step = engine.answer(at("contact"), reply)
    assert step.kind == "finish"
    assert step.state.answers["contact"] == "declined"


# ==============================================================================================
# Bugs found while writing these tests
# ==============================================================================================
@pytest.mark.parametrize(("qid", "reply"), [("stage", "²"), ("stage", "①"), ("tasks", "1,²"), ("contact", "³")])
def test_superscript_and_circled_digits_are_refused_not_raised(engine: Engine, qid: str, reply: str) -> None:
    # str.isdigit() is True for "²" and "①" but int() refuses them: answer() used to raise ValueError.
    step = engine.answer(at(qid), reply)
    assert step.kind == "reask"


def test_a_number_repeated_on_a_multi_question_is_stored_once(engine: Engine) -> None:
    # choose() removes repeated values; typed numbers should too, not store ["telemarketing", "telemarketing", ...]
    step = engine.answer(at("tasks"), "1,1,3")
    assert step.state.answers["tasks"] == ["telemarketing", "lead_research"]


def test_the_same_number_twice_on_a_single_question_is_one_choice(engine: Engine) -> None:
    # _parse_choice let "2,2" past its one_only check (one distinct number), then _take_choice refused
    # the two identical values with one_only ("choose just one option"), though only one was chosen.
    step = engine.answer(at("stage"), "2,2")
    assert step.kind == "ask", step.hint
    assert step.state.answers["stage"] == "early"


def test_a_phone_number_with_its_area_code_in_brackets_leaves_no_bracket_in_the_name(engine: Engine) -> None:
    # _PHONE starts at a digit, so "(" of "(020) 7946 0958" stays behind and the name becomes "Ana (".
    step = engine.answer(at("contact"), "Ana, (020) 7946 0958")
    assert step.state.answers["contact"] == {"name": "Ana", "email": None, "phone": "02079460958", "consent": True}


# ==============================================================================================
# Buttons of a multi-choice question, a decimal comma, "no thanks", and "no" to a proposal
# ==============================================================================================
def test_toggling_selects_and_unselects_and_done_takes_the_selection(engine: Engine) -> None:
    step = walk_to(engine, "goals")
    step = engine.toggle(step.state, "core_time")
    step = engine.toggle(step.state, "scale")
    step = engine.toggle(step.state, "valuation")
    assert step.proposed == ("core_time", "valuation", "scale")  # in option order
    step = engine.toggle(step.state, "valuation")
    assert step.proposed == ("core_time", "scale")
    done = engine.choose(step.state, list(step.proposed))
    assert done.state.answers["goals"] == ["core_time", "scale"] and done.question.id == "past"


def test_toggling_an_exclusive_option_clears_the_others_and_vice_versa(engine: Engine) -> None:
    step = walk_to(engine, "tasks")
    assert step.proposed == ("telemarketing",)
    step = engine.toggle(step.state, "none")
    assert step.proposed == ("none",)
    step = engine.toggle(step.state, "bookkeeping")
    assert step.proposed == ("bookkeeping",)


def test_toggling_a_value_the_question_lacks_is_refused(engine: Engine) -> None:
    step = walk_to(engine, "goals")
    assert engine.toggle(step.state, "telemarketing").hint.code == "not_an_option"
    single = walk_to(engine, "stage")
    assert engine.toggle(single.state, "pre_launch").hint.code == "not_an_option"


@pytest.mark.parametrize(("reply", "hours"), [("12,5", 12.5), ("1,5 hours", 1.5), ("2,000", 2000)])
def test_a_decimal_comma_is_read_as_a_decimal(engine: Engine, reply: str, hours: float) -> None:
    # a company of 51-250 people: 2,000 hours a week are within what it has, so nothing is read back
    step = engine.answer(walk_to(engine, "hours", {**FULL_WALK, "size": "4"}).state, reply)
    assert step.kind == "ask", step.hint
    assert step.state.answers["hours"] == hours


@pytest.mark.parametrize("reply", ["No thanks", "no", "not now"])
def test_no_thanks_in_words_declines_the_contact_step(engine: Engine, reply: str) -> None:
    step = engine.answer(walk_to(engine, "contact").state, reply)
    assert step.kind == "finish" and step.state.answers["contact"] == "declined"


def test_no_to_an_understood_proposal_clears_it(engine: Engine) -> None:
    step = walk_to(engine, "tasks")
    assert step.proposed == ("telemarketing",)
    cleared = engine.answer(step.state, "no")
    assert cleared.hint.code == "proposal_cleared" and cleared.proposed == ()
    assert engine.answer(cleared.state, "").hint.code == "empty"  # Enter no longer confirms it


def test_progress_counts_the_path_the_earlier_answers_chose_for_each_person(tmp_path) -> None:
    """The rest of a path is remembered and shared between people: it must follow each one's own
    earlier answers (here `size`, read by a branch two questions later)."""
    path = tmp_path / "branchy.yaml"
    path.write_text(
        "version: 1\nstart: size\nfinish: {template: recommendation}\nquestions:\n"
        "  - id: size\n    type: single\n    text: How big?\n    options:\n"
        "      - {value: small, label: Small}\n      - {value: large, label: Large}\n    next: notes\n"
        "  - {id: notes, type: text, text: 'Anything else?', next: budget}\n"
        "  - id: budget\n    type: number\n    text: Budget?\n    min: 0\n    max: 100\n"
        "    next:\n      - {to: legal, when: {question: size, equals: large}}\n      - {to: recommendation}\n"
        "  - {id: legal, type: text, text: 'Who signs?', next: recommendation}\n",
        encoding="utf-8",
    )
    engine = Engine(load_dialog(path, TEMPLATES_DIR), lambda answers: dict(answers))
    small = engine.choose(engine.start().state, ["small"])
    large = engine.choose(engine.start().state, ["large"])
    assert (small.question.id, small.number, small.total) == ("notes", 2, 3)
    assert (large.question.id, large.number, large.total) == ("notes", 2, 4)
    # asked again, in the other order, from the remembered paths
    assert engine.resume(large.state).total == 4 and engine.resume(small.state).total == 3
