"""The shared word vocabulary: whole, real words from the text LM's tokenizer.

A token becomes a word when it starts a word (its tokenizer's word-start marker),
is alphabetic with two letters or more and a vowel, is a real word (in a word list such as
Debian's ``wamerican``) and is not a stop word. Each lowercase word gets one id
and one token (the lowercase spelling when the tokenizer has it), whose row of the
LM's output embedding is the word's codebook vector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from transformers import PreTrainedTokenizerBase

# Function words that carry no searchable content; kept out of the index.
STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his
    how if in into is it its itself just me more most my myself no nor not now of off
    on once only or other our ours ourselves out over own same she should so some such
    than that the their theirs them themselves then there these they this those through
    to too under until up very was we were what when where which while who whom why
    will with would you your yours yourself yourselves also another each either else
    ever every may might must shall upon us via yet whose onto
    """.split()  # noqa: SIM905
)

VOWELS = frozenset("aeiouy")  # words without one are abbreviations ("bm", "nth")

# Word-start markers of byte-level BPE (GPT-2, Llama 3, SmolLM) and SentencePiece (Llama 2).
WORD_START_MARKERS = ("Ġ", "▁")


@dataclass(frozen=True)
class Vocabulary:
    """Words and the LM token that stands for each; word ``i`` is dimension ``i``."""

    words: tuple[str, ...]
    token_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.words) != len(self.token_ids):
            raise ValueError("words and token_ids differ in length")
        if len(set(self.words)) != len(self.words):
            raise ValueError("duplicate words in vocabulary")

    def __len__(self) -> int:
        return len(self.words)

    @cached_property
    def index(self) -> dict[str, int]:
        """Each word's dimension (built once: a query looks its words up here)."""
        return {w: i for i, w in enumerate(self.words)}

    def digest(self) -> str:
        """A short content hash, recorded in index manifests."""
        blob = json.dumps([self.words, self.token_ids]).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"words": self.words, "token_ids": self.token_ids}))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        data = json.loads(path.read_text())
        return cls(tuple(data["words"]), tuple(data["token_ids"]))


def read_wordlist(path: Path) -> set[str]:
    """Lowercase alphabetic entries of a word list (one word a line)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"word list {path} not found: install Debian's 'wamerican' or pass another list"
        )
    return {w.strip().lower() for w in path.read_text(errors="ignore").split() if w.isalpha()}


def build_vocabulary(tokenizer: PreTrainedTokenizerBase, wordlist: Iterable[str]) -> Vocabulary:
    """Select the tokenizer's whole-word tokens that are real, non-stop words."""
    real = set(wordlist)
    chosen: dict[str, int] = {}
    for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        if not token.startswith(WORD_START_MARKERS):
            continue
        text = token[1:]
        word = text.lower()
        if len(word) < 2 or not word.isascii() or not word.isalpha() or not VOWELS & set(word):
            continue
        if word not in real or word in STOP_WORDS:
            continue
        # Prefer the lowercase spelling's token when the tokenizer has several.
        if word not in chosen or text == word:
            chosen[word] = token_id
    words = tuple(sorted(chosen))
    return Vocabulary(words, tuple(chosen[w] for w in words))
