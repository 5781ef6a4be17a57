from pathlib import Path

import pytest

from model.vocabulary import Vocabulary, build_vocabulary, read_wordlist


class FakeTokenizer:
    def __init__(self, tokens: list[str]) -> None:
        self.vocab = {t: i for i, t in enumerate(tokens)}

    def get_vocab(self) -> dict[str, int]:
        return self.vocab


WORDS = {"horse", "dog", "merchant", "the", "nth", "ox"}


def test_keeps_whole_real_content_words_one_id_each() -> None:
    tok = FakeTokenizer(
        [
            "Ġhorse",
            "ĠHorse",
            "horse",
            "Ġmerch",
            "Ġthe",
            "Ġnth",
            "Ġdog2",
            "ĠDog",
            "Ġox",
            "▁dog",
            "Ġé",
        ]
    )
    vocab = build_vocabulary(tok, WORDS)  # type: ignore[arg-type]
    assert vocab.words == ("dog", "horse", "ox")
    # lowercase spelling preferred; "horse" without a word-start marker is a fragment
    assert vocab.token_ids[vocab.index["horse"]] == tok.vocab["Ġhorse"]
    assert vocab.token_ids[vocab.index["dog"]] == tok.vocab["▁dog"]


def test_save_load_round_trip_and_digest(tmp_path: Path) -> None:
    vocab = Vocabulary(("cat", "dog"), (7, 3))
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.digest() == vocab.digest()
    assert Vocabulary(("cat", "dog"), (7, 4)).digest() != vocab.digest()
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(("cat", "cat"), (1, 2))


def test_missing_wordlist_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="wamerican"):
        read_wordlist(tmp_path / "nope.txt")
    (tmp_path / "w.txt").write_text("Horse\nit's\ndog\n")
    assert read_wordlist(tmp_path / "w.txt") == {"horse", "dog"}
