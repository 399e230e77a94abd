"""The meta reward model (MetaRM@k): a small scalar model that reads (query, responses, one GRM
sample's principles + critique + scores) and predicts q, the probability that the sample's
scores are correct. MetaRM@k keeps the top k_meta samples by q and votes over those only.

`data` builds training rows from stored GRM samples (no heavy imports); `model.MetaRM` loads and
scores; `train.train_metarm` trains (torch + transformers: the `rewardscale[metarm]` extra).
"""

from .data import MetaRMDataError, RowStats, SampleRow, format_sample, read_rows, sample_correct
from .model import MetaRM, MissingMetaRMExtra, NotAMetaRM, default_encoder, read_marker

__all__ = [
    "MetaRM",
    "MetaRMDataError",
    "MissingMetaRMExtra",
    "NotAMetaRM",
    "RowStats",
    "SampleRow",
    "default_encoder",
    "format_sample",
    "read_marker",
    "read_rows",
    "sample_correct",
]
