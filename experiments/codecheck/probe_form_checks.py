"""Probe: can the embedded 1.5B write a `follows(response) -> bool` check of a message's FORM
constraints (README *Code-checked answers*: it could not, so no such check is built)? Prints each
message's drafts under two prompts: "if any, else No requirements", and one with a worked example.

    python experiments/codecheck/probe_form_checks.py
"""

from __future__ import annotations

from rewardscale.backends import make_backend
from rewardscale.backends.base import GenerationRequest
from rewardscale.template import SYSTEM
from rewardscale.types import Sampling

IF_ANY = (
    "Below is a conversation between a user and an AI assistant. You will judge candidate responses to the user's "
    "last message, but you do not see them yet. If the message sets requirements on the form of a response that a "
    "program can check from its text (a number of words, sentences or items, words it must or must not contain, "
    "letter case, a format such as JSON or a list, answering with only a number or a word), write a Python function "
    "`follows(response: str) -> bool` that returns True exactly when a response meets all of them, in one ```python "
    "block, and nothing else. Use only the standard library. Do not check whether the answer is right, only its "
    "form. If the message sets no such requirement, write only: No requirements."
)
WITH_EXAMPLE = (
    "Write a Python function `follows(response: str) -> bool` that checks the FORM of a response to the user's "
    "message below: it returns False when the response breaks a requirement the message sets on its form (a number "
    "of words, sentences or items, letter case, a separator, answering with only a number or a word, words it must "
    "contain), and True otherwise. Do not check whether the answer is right. A message that sets no requirement on "
    "the form gets `return True`. Example: for 'Name two fruits, in capital letters.' write:\n```python\ndef "
    "follows(response: str) -> bool:\n    return response == response.upper()\n```\nWrite one ```python block "
    "and nothing else."
)
MESSAGES = [
    "Write exactly three words describing the sea.",
    "Answer with only a number: how many sides does a hexagon have?",
    "List two primary colours, separated by a comma.",
    "Reply in lowercase only: what is the chemical symbol for gold?",
    "What is the capital of Japan?",
    "Write a short paragraph about the moon using only lowercase letters (no capital letters at all).",
    "Give one word that rhymes with 'cat'.",
    "What is 17 * 23?",
]


def main() -> None:
    backend = make_backend("llamacpp", model="qwen2.5-coder-1.5b-instruct-q4_k_m", parallel=8)
    for name, instruction, header in (
        ("if any", IF_ANY, "Conversation Context"),
        ("with an example", WITH_EXAMPLE, "User Message"),
    ):
        jobs = [
            GenerationRequest(
                messages=(
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"{instruction}\n\n#### {header} ####\n{m}"},
                ),
                n=2,
                seed=i,
            )
            for i, m in enumerate(MESSAGES)
        ]
        print(f"##### prompt: {name}")
        for m, drafts in zip(MESSAGES, backend.generate(jobs, Sampling(temperature=0.5, max_tokens=160))):
            print(f"=== {m}")
            for d in drafts:
                print("  ---", d.text.strip()[:300])
    backend.close()


if __name__ == "__main__":
    main()
