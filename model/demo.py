"""``python -m model.demo``: the default model on real sample photos and captions.

Prints each photo's top words, each caption's top words, and which photo each
caption ranks first.
"""

from __future__ import annotations

import logging

from . import load_encoder
from .samples import sample_photos
from .sparse import top_words

CAPTIONS = (
    "a cat lying on a blanket",
    "a cup of coffee on a saucer",
    "an astronaut in a space suit with a flag",
    "a rocket on the launch pad",
    "a man with a camera on a tripod",
)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    model = load_encoder()
    photos = sample_photos()
    words = model.vocab.words
    image_weights = model.encode_images(list(photos.values())).word_weights
    print(f"model: {model.config.name}, vocabulary: {len(words)} words\n")
    for name, weights in zip(photos, image_weights):
        listed = ", ".join(w for w, _ in top_words(weights, words, 8))
        print(f"{name:<22} {listed}")
    print()
    text_weights = model.encode_texts(list(CAPTIONS)).word_weights
    images = model.index_vectors(image_weights, "document").double()
    queries = model.index_vectors(text_weights, "query").double()
    names = list(photos)
    for caption, weights, scores in zip(CAPTIONS, text_weights, queries @ images.T):
        listed = ", ".join(w for w, _ in top_words(weights, words, 6))
        print(f"{caption!r}\n    words: {listed}\n    best photo: {names[int(scores.argmax())]}")


if __name__ == "__main__":
    main()
