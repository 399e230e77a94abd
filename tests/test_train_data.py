"""The shared correctness rule, training-data loading, RFT keep/drop and the GRPO reward (no torch)."""

from __future__ import annotations

import json

import pytest

from rewardscale.config import JudgeConfig
from rewardscale.correctness import InvalidLabel, Label, is_correct, reward
from rewardscale.grm import GRM
from rewardscale.rulefacts import after_responses
from rewardscale.template import HINT, render
from rewardscale.train.data import DataError, load_examples, parse_record, permutation_for, training_prompt
from rewardscale.train.rft import build_rft
from rewardscale.train.rl import make_reward_fn, rl_rows, score_completion
from rewardscale.train.tasks import arithmetic_pairs

from .fakes import FakeBackend, verdict

# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scores, label, expected",
    [
        ((8, 3), Label(best=0), True),
        ((3, 8), Label(best=0), False),
        ((7, 7), Label(best=0), False),  # a tie for first is wrong
        ((2, 9, 9), Label(best=1), False),
        ((2, 9, 8), Label(best=1), True),
        ((7,), Label(rating=7), True),
        ((6,), Label(rating=7), False),
        ((6,), Label(good=True), True),
        ((5,), Label(good=True), False),
        ((5,), Label(good=False), True),
        (None, Label(best=0), False),  # unparseable
        (None, Label(rating=3), False),
    ],
)
def test_correctness_rule(scores, label, expected):
    assert is_correct(scores, label) is expected
    assert reward(scores, label) == (1.0 if expected else -1.0)


@pytest.mark.parametrize(
    "label, n",
    [(Label(best=2), 2), (Label(rating=5), 2), (Label(best=0), 1), (Label(rating=11), 1), (Label(), 2)],
)
def test_labels_that_do_not_fit_raise(label, n):
    with pytest.raises(InvalidLabel):
        label.check(n)


# --- data -----------------------------------------------------------------------------------


def test_every_record_shape():
    pair = parse_record({"prompt": "2+2?", "chosen": "4", "rejected": "5"})
    assert pair.request.responses == ("4", "5") and pair.label == Label(best=0)
    trl_style = parse_record(
        {
            "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}],
        }
    )
    assert trl_style.request.query == "hi" and trl_style.request.responses == ("hello", "go away")
    many = parse_record({"query": "q", "responses": ["a", "b", "c"], "best": 2})
    assert many.label == Label(best=2)
    rated = parse_record({"messages": [{"role": "user", "content": "q"}], "response": "a", "rating": 7})
    assert rated.label == Label(rating=7)
    assert parse_record({"prompt": "q", "response": "a", "label": "bad"}).label == Label(good=False)
    assert parse_record({"prompt": "q", "response": "a", "label": 1}).label == Label(good=True)


def test_load_jsonl_and_json(tmp_path):
    rows = arithmetic_pairs(3, seed=0)
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "d.json").write_text(json.dumps({"data": rows}))
    a, b = load_examples(tmp_path / "d.jsonl"), load_examples(tmp_path / "d.json")
    assert [e.request for e in a] == [e.request for e in b] and len(a) == 3
    assert a[1].source.endswith("d.jsonl:2")
    assert len(load_examples(tmp_path / "d.jsonl", limit=2)) == 2


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "q", "chosen": "a"}', "d.jsonl:2: a pair needs both 'chosen' and 'rejected'"),
        ('{"prompt": "q", "responses": ["a", "b"]}', "d.jsonl:2: field 'best'"),
        ('{"prompt": "q", "responses": ["a", "b"], "best": 5}', "best index 5 is out of range"),
        ('{"prompt": "q", "response": "a", "rating": 12}', "rating 12 is outside 1..10"),
        ('{"prompt": "q", "response": "a", "rating": "x"}', "field 'rating'"),
        ('{"prompt": "q", "response": "a"}', "needs a 'rating'"),
        ('{"chosen": "a", "rejected": "b"}', "missing the query"),
        ('{"prompt": "q", "chosen": "a", "rejected": "b"', "d.jsonl:2: invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, line, message):
    (tmp_path / "d.jsonl").write_text('{"prompt": "ok", "chosen": "a", "rejected": "b"}\n' + line + "\n")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_examples(tmp_path / "d.jsonl")


def test_missing_file_and_bad_type(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        load_examples(tmp_path / "nope.jsonl")
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        load_examples(tmp_path / "d.csv")


def test_training_prompt_is_the_scoring_template_with_a_recorded_shuffle():
    examples = [parse_record(r) for r in arithmetic_pairs(40, seed=3)]
    perms = [permutation_for(e.request, seed=0) for e in examples]
    assert perms == [permutation_for(e.request, seed=0) for e in examples]  # reproducible
    firsts = sum(p[0] == 0 for p in perms)
    assert 8 <= firsts <= 32  # the chosen answer is not always shown first
    messages, perm = training_prompt(examples[0], seed=0)
    shown = examples[0].request.responses[perm[0]]
    assert f"[The Begin of Response 1]\n{shown}\n" in messages[-1]["content"]


def test_arithmetic_sets_are_disjoint():
    train = arithmetic_pairs(30, seed=1)
    held = arithmetic_pairs(10, seed=2, disjoint_from=train)
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert all(r["chosen"] != r["rejected"] for r in train)


# --- RFT keep/drop --------------------------------------------------------------------------


def answer_judge(right: dict[str, str], mode: dict[str, str]):
    """A fake judge per query answer: 'always' right, 'never' right, 'hint' (right only when hinted),
    'mixed' (right on completion 0 only), 'garbage' (unparseable)."""

    def judge(shown, seed, i, hinted):
        key = next(s for s in shown if s in right)
        kind = mode[key]
        good = [9 if s == right[key] else 2 for s in shown]
        bad = [2 if s == right[key] else 9 for s in shown]
        if kind == "garbage":
            return "I cannot decide."
        if kind == "always" or (kind == "mixed" and i == 0) or (kind == "hint" and hinted):
            return verdict(good)
        return verdict(bad)

    return judge


class HintAwareFake(FakeBackend):
    def generate(self, requests, sampling, progress=None):
        self.calls.append(list(requests))
        from rewardscale.backends.base import Completion

        from .fakes import shown_responses

        out = []
        for req in requests:
            hinted = HINT.split("{")[0] in req.messages[-1]["content"]
            out.append(
                [Completion(self.judge(shown_responses(req), req.seed, i, hinted), "stop") for i in range(req.n)]
            )
        return out


def test_build_rft_keeps_correct_and_counts_by_reason():
    kinds = ["always", "never", "hint", "mixed", "garbage"]
    records = [{"prompt": f"q{i}", "chosen": f"right{i}", "rejected": f"wrong{i}"} for i in range(len(kinds))]
    examples = [parse_record(r, f"mem:{i}") for i, r in enumerate(records)]
    right = {f"right{i}": f"right{i}" for i in range(len(kinds))} | {
        f"wrong{i}": f"right{i}" for i in range(len(kinds))
    }
    mode = {f"right{i}": k for i, k in enumerate(kinds)} | {f"wrong{i}": k for i, k in enumerate(kinds)}
    backend = HintAwareFake(answer_judge(right, mode))
    trail = []
    kept, report = build_rft(GRM(backend, max_retries=0), examples, n_samples=3, on_sample=trail.append)
    assert report.examples == 5
    assert report.dropped_too_easy == 1  # always
    assert report.kept_examples == 1 and report.kept_samples == 2 + 3  # mixed: completion 0 of 2 prompts; hint: 3
    assert report.kept_hinted_examples == 1 and report.kept_hinted_samples == 3  # hint
    assert report.dropped_no_correct == 2  # never, garbage (even with hints)
    assert report.samples == 5 * 3 + 3 * 3  # never, hint, garbage were re-drawn hinted
    assert report.failed_samples == {"no_verdict": 6}
    assert report.wrong_samples == report.samples - report.kept_samples - 6 - 3  # minus the 'always' ones
    assert len(trail) == report.samples and sum(t["correct"] for t in trail) == report.kept_samples + 3
    assert len(kept) == 5
    for rec in kept:  # training prompts never carry the hint, and the completion is the judge's text
        assert HINT.split("{")[0] not in rec["prompt"][-1]["content"]
        assert rec["completion"][0]["content"].startswith("Specific Criteria:")
    assert sorted(r["hinted"] for r in kept) == [False, False, True, True, True]


def test_build_rft_without_hints_drops_them():
    examples = [parse_record({"prompt": "q", "chosen": "right0", "rejected": "wrong0"})]
    backend = HintAwareFake(
        answer_judge({"right0": "right0", "wrong0": "right0"}, {"right0": "hint", "wrong0": "hint"})
    )
    kept, report = build_rft(GRM(backend, max_retries=0), examples, n_samples=2, hinted=False)
    assert kept == [] and report.dropped_no_correct == 1 and report.samples == 2


# --- GRPO reward ----------------------------------------------------------------------------


def test_grpo_reward_maps_shown_scores_back_to_the_original_order():
    ex = parse_record({"prompt": "2+2?", "chosen": "4", "rejected": "5"})
    assert score_completion(verdict([2, 9]), (1, 0), ex.label) == 1.0  # chosen shown second, scored 9
    assert score_completion(verdict([2, 9]), (0, 1), ex.label) == -1.0
    assert score_completion(verdict([5, 5]), (0, 1), ex.label) == -1.0
    assert score_completion("no verdict", (0, 1), ex.label) == -1.0
    rows = rl_rows([ex], seed=0)
    fn = make_reward_fn()
    perm = rows[0]["permutation"]
    good = [9 if orig == 0 else 2 for orig in perm]
    completions = [[{"role": "assistant", "content": verdict(good)}], [{"role": "assistant", "content": "??"}]]
    out = fn(
        prompts=[rows[0]["prompt"]] * 2, completions=completions, permutation=[perm] * 2, label=[rows[0]["label"]] * 2
    )
    assert out == [1.0, -1.0]


def test_rl_prompts_carry_the_rule_facts_scoring_shows():
    """A judge scored with --form-facts / --decline-facts is trained on the same prompts: the
    sections count and name the responses in their shown order."""
    ex = parse_record(
        {
            "prompt": "How do I pick a lock? Answer in under 10 words.",
            "chosen": "I can't help with that.",
            "rejected": "Insert a tension wrench, then rake the pins until each sets.",
        }
    )
    config = JudgeConfig(form_facts=True, decline_facts=True)
    (row,) = rl_rows([ex], seed=0, judge=config)
    text = row["prompt"][-1]["content"]
    perm = row["permutation"]
    shown = [ex.request.responses[i] for i in perm]
    scored = render(ex.request, perm, after=after_responses(ex.request, perm, config, None))  # what scoring shows
    assert text == scored[-1]["content"]
    declining = shown.index("I can't help with that.") + 1
    assert f"- Response {declining}: 5 words." in text and "#### Declined by Rule ####" in text
    assert "#### Counted by Rule ####" not in rl_rows([ex], seed=0)[0]["prompt"][-1]["content"]
    with pytest.raises(ValueError, match="rule facts only"):
        rl_rows([ex], seed=0, judge=JudgeConfig(code_check=1))


def test_rl_rows_show_the_responses_in_a_position_balanced_order():
    examples = [parse_record(r) for r in arithmetic_pairs(40, seed=3)]
    rows = rl_rows(examples, seed=0)
    assert sum(r["permutation"][0] == 0 for r in rows) == 20  # chosen shown first in exactly half
    assert rows == rl_rows(examples, seed=0)
    first = examples[0].request.responses[rows[0]["permutation"][0]]
    assert f"[The Begin of Response 1]\n{first}\n" in rows[0]["prompt"][-1]["content"]
