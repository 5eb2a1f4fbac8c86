"""Prompt text to CLIP text embeddings, with an LRU cache keyed by the prompt text."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch


class PromptEncoder:
    """Encodes prompts with the model's tokenizer and text encoder.

    :meth:`encode` returns the ``(1, context, width)`` last hidden state (what the UNet
    attends to), padded to the tokenizer's context length and truncated past it; the
    ``capacity`` most recently used prompts are kept, so live parameter changes that keep
    the prompt skip the text encoder. ``hits`` and ``misses`` count cache use.
    """

    def __init__(self, tokenizer: Any, text_encoder: Any, capacity: int = 64) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def encode(self, prompt: str) -> torch.Tensor:
        """The embedding of ``prompt`` (cached; do not modify the returned tensor)."""
        if prompt in self._cache:
            self.hits += 1
            self._cache.move_to_end(prompt)
            return self._cache[prompt]
        self.misses += 1
        embedding = self._run(prompt)
        self._cache[prompt] = embedding
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return embedding

    @torch.no_grad()
    def _run(self, prompt: str) -> torch.Tensor:
        tokens = self.tokenizer(prompt, padding="max_length", truncation=True, return_tensors="pt",
                                max_length=self.tokenizer.model_max_length)
        ids = tokens.input_ids.to(self.text_encoder.device)
        return self.text_encoder(ids)[0]
