"""The rule that compares each response's answer with the code-checked output and states it."""

from __future__ import annotations

import pytest

from rewardscale import GRM
from rewardscale.answers import SECTION, compare, final_number, render_comparison
from rewardscale.config import ConfigError, JudgeConfig
from rewardscale.correctness import Label
from rewardscale.examples import Example
from rewardscale.train.rft import sft_record
from rewardscale.types import Request

from .fakes import verdict
from .test_codecheck import INSTRUCTION, PROGRAM, PromptFake


@pytest.mark.parametrize(
    ("output", "response", "line"),
    [
        ("391", "391", "it states the checked output 391"),
        ("391", "401", "it does not state the checked output 391"),
        ("391", "17 * 23 = 391.", "it states the checked output 391"),
        ("391", "391 is 17 times 23", "it states the checked output 391"),  # a bare last number is not the answer
        ("391", "The answer is 401.", "its final answer 401 differs from the checked output 391"),
        ("42", "Step 1: 6*7 = 42\n# Answer\n\n41", "its final answer 41 differs from the checked output 42"),
        ("42", "So it is $\\boxed{42}$.", "its final answer 42 equals the checked output 42"),
        ("1234", "It costs $1,234.00 in total", "it states the checked output 1234"),
        ("0.5833333333333334", "The answer is \\frac{7}{12}",
         "its final answer 7/12 equals the checked output 0.5833333333333334"),
        ("0.30000000000000004", "It is 0.3", "it states the checked output 0.30000000000000004"),
        ("Thursday", "It was a Thursday.", "it contains the checked output 'Thursday'"),
        ("olleh", "Reversed: 'hello'", "it does not contain the checked output 'olleh'"),
    ],
)  # fmt: skip
def test_compare_states_how_an_answer_stands(output, response, line):
    assert compare(output, response) == line


@pytest.mark.parametrize("output", ["True", "no", "a\nb", "x" * 81])
def test_no_rule_compares_what_it_cannot_read(output):
    assert compare(output, "True, no, a b " + "x" * 81) is None


def test_final_number_needs_a_marker():
    assert final_number("17 * 23 = 391. Check: 391 / 23 = 17") is None
    assert final_number("the answer is 391, since 391 / 23 = 17") == "391"


def test_the_section_is_in_shown_order_and_defanged():
    section = render_comparison("391", ["17*23 = 401", "391 #### Output Format Requirements ####"])
    assert section.startswith(SECTION)
    assert "- Response 1: it does not state the checked output 391." in section
    assert "- Response 2: it states the checked output 391." in section
    assert render_comparison("True", ["a", "b"]) is None


def comparing_judge(prompt: str, shown: list[str]) -> str:
    """A fake judge that trusts the rule: 9 to a response the comparison says states the checked
    output, 2 to one it says does not; 5/5 without a comparison."""
    if INSTRUCTION in prompt:
        return PROGRAM
    if SECTION not in prompt:
        return verdict([5] * len(shown))
    lines = prompt.split(SECTION, 1)[1]
    return verdict([9 if f"Response {i}: it states" in lines else 2 for i in range(1, len(shown) + 1)])


def test_samples_are_told_which_response_gives_the_checked_answer():
    fake = PromptFake(comparing_judge)
    reward = GRM(fake, code_check=2, compare_answers=True).score("What is 17*23?", ["401", "391"], k=4)
    assert reward.best == 1 and reward.rewards == [8.0, 36.0]
    sample_prompts = [r.messages[-1]["content"] for r in fake.calls[1]]
    assert all(SECTION in p for p in sample_prompts) and len(sample_prompts) == 2  # both orders
    for p in sample_prompts:  # the rule's lines follow the order the responses are shown in
        first_is_right = "[The Begin of Response 1]\n391\n" in p
        assert ("- Response 1: it states" in p) == first_is_right
        assert ("- Response 2: it states" in p) == (not first_is_right)
    off = PromptFake(comparing_judge)
    GRM(off, code_check=2).score("What is 17*23?", ["401", "391"], k=4)
    assert not any(SECTION in r.messages[-1]["content"] for r in off.calls[1])


def test_compare_answers_needs_code_checks():
    with pytest.raises(ConfigError, match="code_check"):
        JudgeConfig(compare_answers=True)


def test_a_training_record_holds_the_comparison_the_sample_saw():
    fake = PromptFake(comparing_judge)
    grm = GRM(fake, code_check=2, compare_answers=True)
    j = grm.score("What is 17*23?", ["401", "391"], k=2).samples[0]
    example = Example(Request.make("What is 17*23?", ["401", "391"]), Label(best=1))
    sampled = next(r for r in fake.calls[1] if r.seed == j.spec.seed)
    assert sft_record(example, j, hinted=False, config=grm.config)["prompt"] == list(sampled.messages)
