"""Generation engines behind one protocol; heavy ones are imported lazily by `make_backend`."""

from __future__ import annotations

from pathlib import Path

from .base import Backend, BackendError, Capabilities, Completion, GenerationRequest, MissingExtra, capabilities_of

BACKENDS = ("llamacpp", "openai", "transformers")

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "Capabilities",
    "Completion",
    "GenerationRequest",
    "MissingExtra",
    "capabilities_of",
    "make_backend",
]


def make_backend(name: str, **options) -> Backend:
    """Build a backend by name: llamacpp (embedded default), openai (any compatible server),
    transformers. Options are passed to the backend's constructor."""
    if name == "llamacpp":
        from .. import models
        from .llamacpp import LlamaCppBackend

        model = options.pop("model", None) or models.DEFAULT_MODEL
        added = list(options.get("lora", ()))  # GGUF LoRA files (path, scale) on top of the model
        for adapter, _ in added:
            if not Path(adapter).is_file():
                raise BackendError(f"no GGUF LoRA adapter at {adapter}")
        if models.is_embedded(model):
            path, embedded = models.llama_files(model)  # an embedded judge brings its own adapter
            options["lora"] = [*embedded, *added]
        else:
            path = model
        # the id every store key holds: an embedded judge's name (and adapter checksum), then the
        # adapters added on top, which change the judge too
        base = models.store_id(model)
        options.setdefault("model_id", models.lora_model_id(base, added) if added else base)
        return LlamaCppBackend(path, **options)
    if name == "openai":
        from .openai_http import OpenAIBackend

        if not options.get("base_url"):
            raise BackendError("the openai backend needs --base-url (e.g. http://localhost:8000/v1)")
        if not options.get("model"):
            raise BackendError("the openai backend needs --model (the served model name)")
        return OpenAIBackend(**options)
    if name == "transformers":
        from .. import models
        from .transformers_hf import TransformersBackend

        model = options.pop("model", None)
        if not model:
            raise BackendError("the transformers backend needs --model (a Hugging Face dir/id or .gguf file)")
        options.setdefault("model_id", model)
        if model in models.ADAPTERS:
            raise BackendError(
                f"{model} is a base model plus a GGUF LoRA adapter, which only the llamacpp backend applies; "
                f"use --backend llamacpp, or --model {models.ADAPTERS[model].base} for the raw base model"
            )
        return TransformersBackend(models.model_path(model) if model in models.MODELS else model, **options)
    raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
