"""transformers backend (torch): CPU here, CUDA for GPU users; also scores fresh training checkpoints.

Loads a Hugging Face model dir/id, or a GGUF file through transformers' GGUF loader (`gguf`).
The chat template is the tokenizer's own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..types import Sampling
from .base import BackendError, Capabilities, Completion, GenerationRequest, MissingExtra, Progress


class TransformersBackend:
    """`model.generate` with `num_return_sequences=n` per prompt (the prompt is encoded once)."""

    capabilities = Capabilities(continuation=True)  # no grammar, so no constrained verdicts

    def __init__(
        self,
        model: str | os.PathLike,
        device: str | None = None,
        dtype: str = "auto",
        model_id: str | None = None,
        tokenizer: str | os.PathLike | None = None,
    ):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise MissingExtra("transformers/torch", "transformers") from e
        self._torch = torch
        path = Path(model)
        kwargs: dict[str, Any] = {}
        source: str | os.PathLike = model
        if path.suffix == ".gguf":
            if not path.is_file():
                raise BackendError(f"no GGUF model at {path}")
            source, kwargs = str(path.parent), {"gguf_file": path.name}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # bf16 by default (the GPU norm); on AVX2-only CPUs bf16 matmuls are far slower than fp32.
        torch_dtype = torch.bfloat16 if dtype == "auto" else getattr(torch, dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or source, **({} if tokenizer else kwargs))
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs).to(self.device)
        except (OSError, ValueError) as e:
            raise BackendError(f"transformers could not load {model}: {e}") from e
        self.model.eval()
        self.model_id = model_id or str(model)

    def _one(self, req: GenerationRequest, sampling: Sampling) -> list[Completion]:
        torch = self._torch
        ids = self.tokenizer.apply_chat_template(
            req.chat(),  # with a prefix: the assistant's reply, continued
            add_generation_prompt=req.prefix is None,
            continue_final_message=req.prefix is not None,
            return_tensors="pt",
            return_dict=True,
        ).to(self.device)
        torch.manual_seed(req.seed)
        do_sample = sampling.temperature > 0
        with torch.no_grad():
            out = self.model.generate(
                **ids,
                do_sample=do_sample,
                temperature=sampling.temperature if do_sample else None,
                top_p=sampling.top_p if do_sample else None,
                top_k=None,
                max_new_tokens=sampling.max_tokens,
                num_return_sequences=req.n,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        start = ids["input_ids"].shape[1]
        cfg_eos = self.model.generation_config.eos_token_id
        cfg_eos = [cfg_eos] if isinstance(cfg_eos, int) else list(cfg_eos or [])
        eos = {self.tokenizer.eos_token_id, *cfg_eos} - {None}
        completions = []
        for seq in out:
            new = seq[start:].tolist()
            pad = self.tokenizer.pad_token_id
            while new and pad is not None and new[-1] == pad and pad not in eos:
                new.pop()
            ended = any(t in eos for t in new)
            n_tokens = next((i for i, t in enumerate(new) if t in eos), len(new))
            text = self.tokenizer.decode(new[:n_tokens], skip_special_tokens=True)
            completions.append(Completion(text=text, finish_reason="stop" if ended else "length", tokens=n_tokens))
        return completions

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: Sampling, progress: Progress | None = None
    ) -> list[list[Completion]]:
        if any(req.grammar is not None or req.verdict is not None for req in requests):
            raise BackendError("the transformers backend cannot constrain a generation (grammar or verdict)")
        results = []
        for req in requests:
            results.append(self._one(req, sampling))
            if progress:
                progress(req.n)
        return results

    def close(self) -> None:
        pass
