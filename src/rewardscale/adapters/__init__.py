"""GGUF LoRA adapters of the embedded judges, shipped in the package (see `rewardscale.models.ADAPTERS`)."""
