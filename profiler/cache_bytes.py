"""Bytes held by a transformers cache object: the cache tensors themselves."""

from __future__ import annotations

import torch

_STATE_ATTRS = ("keys", "values", "conv_states", "recurrent_states", "_quantized_keys", "_quantized_values",
                "indexer_keys")  # DynamicIndexedLayer: the DSA indexer's key cache


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def cache_tensor_bytes(cache) -> int:
    """Sum of the K/V (and SSM state) tensors a transformers Cache holds, in bytes."""
    total = 0
    for layer in getattr(cache, "layers", []):
        for name in _STATE_ATTRS:
            for t in _tensors(getattr(layer, name, None)):
                total += t.numel() * t.element_size()
    return total
