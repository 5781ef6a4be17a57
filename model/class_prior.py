"""ImageNet class words: what the backbone's own classifier sees, as words.

EfficientNet-Lite0's ImageNet head knows 1,000 classes, among them objects Flickr8k
hardly shows (20 of its 7,000 photos mention a cat), so the adapters trained on it
never learn those words. Each class gets a lexical vector: the trained text side's
vector of the prompt ``"a {class}."`` (its top ``k`` words). An image's
prior is the mixture of the class vectors under the classifier's probabilities, and
its word weights become ``normalize(w + weight * prior)``, the weight chosen on dev
(``python -m model.class_prior``). The class vectors ship in the checkpoint; a later
training run can keep them in the loop (``model.train --class-prior --class-words``).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from .config import CONFIG_DIR

if TYPE_CHECKING:
    from .lexvla import LexVLA

CLASS_NAMES = CONFIG_DIR / "imagenet-classes.txt"  # the 1,000 ImageNet-1k labels, in order
CLASS_WORDS = "class_words.safetensors"
PROMPT = "a {}."


def class_names() -> list[str]:
    """The ImageNet-1k class labels in the classifier's order."""
    return CLASS_NAMES.read_text().splitlines()


@dataclass
class ClassWords:
    """Each class's top words: ``indices`` into the vocabulary and their ``values``."""

    indices: torch.Tensor  # (classes, k) int64
    values: torch.Tensor  # (classes, k) float

    @classmethod
    def from_weights(cls, weights: torch.Tensor, k: int) -> ClassWords:
        """Keep the ``k`` largest words of each class vector, L2-normalised."""
        values, indices = weights.topk(k, dim=-1)
        return cls(indices, torch.nn.functional.normalize(values, dim=-1))

    def mix(self, probs: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """``probs @ class vectors``: the prior over the vocabulary.  # (..., vocab)"""
        flat = probs.reshape(-1, probs.shape[-1])
        contributions = (flat.unsqueeze(-1) * self.values.to(flat)).reshape(len(flat), -1)
        index = self.indices.reshape(1, -1).expand(len(flat), -1).to(flat.device)
        prior = flat.new_zeros(len(flat), vocab_size).scatter_add_(1, index, contributions)
        return prior.reshape(*probs.shape[:-1], vocab_size)

    def save(self, path: Path) -> None:
        save_file({"indices": self.indices.int(), "values": self.values.half()}, str(path))

    @classmethod
    def load(cls, path: Path) -> ClassWords:
        state = load_file(str(path))
        return cls(state["indices"].long(), state["values"].float())


@torch.no_grad()
def compute_class_words(model: LexVLA, k: int = 64) -> ClassWords:
    """The class vectors from the model's trained text side (1,000 prompts, ~1 min on CPU)."""
    prompts = [PROMPT.format(name) for name in class_names()]
    return ClassWords.from_weights(model.encode_texts(prompts).word_weights, k)


def with_prior(model: LexVLA, class_words: ClassWords, weight: float) -> LexVLA:
    """Attach class words to ``model`` (in place) with the given prior weight."""
    model.class_words = class_words
    model.config = replace(model.config, class_prior=weight)
    return model


def main() -> None:
    from . import load_encoder
    from .evaluate import encode_captions, encode_images, lexical_retrieval
    from .splits import load_split_features

    parser = argparse.ArgumentParser(prog="python -m model.class_prior", description=__doc__)
    parser.add_argument("--model", required=True, help="checkpoint folder to add the prior to")
    parser.add_argument("--data", required=True, type=Path, help="folder with captions.jsonl")
    parser.add_argument("--split", default="dev", help="split that chooses the weight")
    parser.add_argument("--cache", type=Path, default=Path("cache/features"), help="feature cache")
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3],
        help="prior weights to compare (the best R@1 sum wins; ties go to the larger)",
    )
    parser.add_argument("--out", type=Path, help="write the checkpoint with the best weight here")
    parser.add_argument("--save-weight", type=float, help="write --out with this weight instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    model = load_encoder(args.model)
    split = load_split_features(model, args.data, args.split, args.cache)
    class_words = compute_class_words(model)
    captions = encode_captions(model, split)
    print(f"{args.split}: prior weight, i2t R@1 / R@5 / R@10 | t2i R@1 / R@5 / R@10")
    best = (-1.0, 0.0)
    for weight in args.weights:
        images = encode_images(with_prior(model, class_words, weight), split)
        report = lexical_retrieval(model, split, (images, captions))
        print(f"  {weight:<5} {report.row()}")
        best = max(best, (report.i2t[1] + report.t2i[1], weight))
    print(f"best weight on {args.split}: {best[1]} (R@1 sum {best[0]:.1f})")
    if args.out:
        weight = best[1] if args.save_weight is None else args.save_weight
        with_prior(model, class_words, weight).save_pretrained(args.out)
        print(f"checkpoint with prior weight {weight}: {args.out}")


if __name__ == "__main__":
    main()
