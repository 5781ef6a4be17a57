"""The ImageNet class-word prior on a tiny random model."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model import LexVLA, load_encoder
from model.class_words import CLASS_WORDS, ClassWords, class_names
from model.training.class_prior import with_prior


def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def test_the_class_names_are_imagenet_in_classifier_order() -> None:
    names = class_names()
    assert len(names) == 1000
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]


def test_mixing_equals_the_dense_product_of_probabilities_and_class_vectors() -> None:
    torch.manual_seed(0)
    dense = torch.rand(7, 30)
    words = ClassWords.from_weights(dense, 4)
    kept = torch.zeros_like(dense).scatter_(1, words.indices, words.values)
    assert torch.allclose(kept.norm(dim=1), torch.ones(7))
    probs = torch.rand(2, 3, 7).softmax(-1)
    assert torch.allclose(words.mix(probs, 30), probs @ kept, atol=1e-6)


def classifier_sees(model: LexVLA, index: int) -> None:
    """Make the tiny backbone's classifier certain of one class whatever the image."""
    with torch.no_grad():
        model.image.backbone._fc.bias.zero_()
        model.image.backbone._fc.bias[index] = 100.0


def test_an_images_vector_gets_the_words_of_the_class_its_classifier_sees(tmp_path: Path) -> None:
    model = load_encoder("tiny-lite0")
    classifier_sees(model, 281)
    vectors = torch.zeros(1000, len(model.vocab))
    word = len(model.vocab) - 1
    vectors[281, word] = 1.0  # "tabby" -> one word
    vectors[:, 0] = 0.5  # every other class -> another word
    before = model.encode_images([photo()]).word_weights[0]
    with_prior(model, ClassWords.from_weights(vectors, 2), 10.0)
    after = model.encode_images([photo()]).word_weights[0]
    assert after.argmax() == word != before.argmax()
    assert torch.allclose(after.norm(), torch.tensor(1.0))

    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_encoder(tmp_path / "ckpt")
    assert loaded.config.class_prior == 10.0
    assert torch.allclose(loaded.encode_images([photo()]).word_weights[0], after, atol=1e-3)

    (tmp_path / "ckpt" / CLASS_WORDS).unlink()
    with pytest.raises(FileNotFoundError, match=CLASS_WORDS):
        load_encoder(tmp_path / "ckpt")


def test_a_weight_of_zero_leaves_the_image_vectors_unchanged(tiny_lite0: LexVLA) -> None:
    before = tiny_lite0.encode_images([photo()]).word_weights
    words = ClassWords.from_weights(torch.rand(1000, len(tiny_lite0.vocab)), 3)
    model = with_prior(tiny_lite0, words, 0.0)
    try:
        assert torch.equal(model.encode_images([photo()]).word_weights, before)
    finally:
        tiny_lite0.class_words = None


def test_a_backbone_without_a_classifier_refuses_a_prior(tiny_dinov2: LexVLA) -> None:
    config = replace(tiny_dinov2.config, class_prior=0.1)
    with pytest.raises(ValueError, match="no classifier"):
        LexVLA(config, tiny_dinov2.vocab)


def test_other_class_words_give_another_model_fingerprint() -> None:
    model = load_encoder("tiny-lite0")
    words = ClassWords.from_weights(torch.rand(1000, len(model.vocab)), 3)
    fingerprints = {with_prior(model, words, 0.1).fingerprint()}
    words.values[0, 0] += 0.5
    fingerprints.add(model.fingerprint())
    assert len(fingerprints) == 2


def test_training_with_a_prior_needs_its_class_words(tmp_path: Path) -> None:
    args = ["--data", str(tmp_path), "--out", str(tmp_path), "--class-prior", "0.1"]
    run = subprocess.run(
        [sys.executable, "-m", "model.training", "train", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "class_prior and class_words go together" in run.stderr
