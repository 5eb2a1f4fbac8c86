"""Caption classes, caption words and the mini model's CLIP tokenizer.

A caption reads like ``"dark house drums with bass line, fast, 132 bpm"``: an optional mood,
the class phrase (instrument parts, drum genre), optional tempo words and meter. The
tokenizer is a ``CLIPTokenizer`` whose vocabulary is every byte (so any prompt tokenizes)
plus each caption word as one token (built by BPE merges), so nothing is downloaded.
"""

from __future__ import annotations

import random
from typing import Any

from bridge.mini.composer import MOODS, LoopSpec

#: Caption class -> parts played (see :mod:`bridge.mini.composer`).
CLASSES: dict[str, tuple[str, ...]] = {
    "rock drums": ("rock",), "house drums": ("house",), "techno drums": ("techno",),
    "breakbeat drums": ("breakbeat",), "bass line": ("bass",), "piano chords": ("piano",),
    "organ chords": ("organ",), "ambient pad": ("pad",), "lead melody": ("lead",),
    "house drums with bass line": ("house", "bass"), "techno drums with bass line": ("techno", "bass"),
    "breakbeat drums with bass line": ("breakbeat", "bass"),
    "rock drums with piano chords": ("rock", "piano"), "ambient pad with lead melody": ("pad", "lead"),
    "piano chords with bass line": ("piano", "bass"),
    "rock drums with bass line and organ chords": ("rock", "bass", "organ"),
}
TEMPO_WORDS = ("slow", "medium", "fast")
EXTRA_WORDS = ("bpm", "tempo", "waltz", "music", "loop", "drums", "with", "and")
CONTEXT_LENGTH = 77


def words() -> list[str]:
    """Every word a caption can hold (digits tokenize one by one, as in CLIP)."""
    found = {w for phrase in CLASSES for w in phrase.split()}
    return sorted(found | set(MOODS) | set(TEMPO_WORDS) | set(EXTRA_WORDS))


def tempo_word(bpm: float) -> str:
    """``slow`` below 100 BPM, ``fast`` from 140, else ``medium``."""
    return "slow" if bpm < 100 else "fast" if bpm >= 140 else "medium"


def full_caption(name: str, spec: LoopSpec) -> str:
    """The complete caption of a loop of class ``name``."""
    parts = [f"{spec.mood} {name}", tempo_word(spec.bpm), f"{round(spec.bpm)} bpm"]
    if spec.beats == 3:
        parts.append("waltz")
    return ", ".join(parts)


def sampled_caption(name: str, spec: LoopSpec, rng: random.Random, drop: float = 0.1) -> str:
    """A training caption: with probability ``drop`` the empty prompt (for classifier-free
    guidance), else the class phrase (drum genre sometimes dropped, so that "drums" alone
    means drums) with the mood, tempo and meter words each kept at random."""
    if rng.random() < drop:
        return ""
    phrase = name
    if rng.random() < 0.2:
        phrase = " ".join(w for w in name.split() if w not in ("rock", "house", "techno", "breakbeat"))
    if rng.random() < 0.6:
        phrase = f"{spec.mood} {phrase}"
    extras = [tempo_word(spec.bpm)] if rng.random() < 0.4 else []
    if rng.random() < 0.4:
        extras.append(f"{round(spec.bpm)} bpm")
    if spec.beats == 3 and rng.random() < 0.7:
        extras.append("waltz")
    return ", ".join([phrase] + extras)


def build_tokenizer() -> Any:
    """A ``CLIPTokenizer`` over bytes plus one token per caption word (context 77)."""
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_tables()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CONTEXT_LENGTH)


def tokenizer_tables() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocabulary, merges): bytes, bytes with ``</w>``, merge products, start/end tokens.

    Each caption word gets the merges that build it left to right; a word whose merges lose
    to another word's (``lo`` of "loop" inside "slow") has its merges moved to the front,
    until every word is one token (checked by the tests)."""
    from bridge.engine.tiny import _byte_symbols

    symbols = _byte_symbols()
    chains = {word: _merge_chain(word) for word in words()}
    order = list(chains)
    for _ in range(len(order)):
        merges = list(dict.fromkeys(m for word in order for m in chains[word]))
        failing = [w for w in order if _apply(w, merges) != [w + "</w>"]]
        if not failing:
            break
        order = failing + [w for w in order if w not in failing]
    tokens = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    unique = list(dict.fromkeys(tokens))
    return {token: index for index, token in enumerate(unique)}, merges


def _merge_chain(word: str) -> list[tuple[str, str]]:
    pieces = list(word[:-1]) + [word[-1] + "</w>"]
    chain, prefix = [], pieces[0]
    for piece in pieces[1:]:
        chain.append((prefix, piece))
        prefix += piece
    return chain


def _apply(word: str, merges: list[tuple[str, str]]) -> list[str]:
    """``word`` after byte-pair merging (lowest rank first), as CLIP's BPE does."""
    ranks = {m: i for i, m in enumerate(merges)}
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), len(ranks)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts
