"""``python -m model``: encode a caption or an image and print its top words; ``demo``
prints the sample photos' words and which photo each of a few captions ranks first."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import LexVLA, load_encoder
from .image_encoder import load_image
from .samples import sample_photos
from .sparse import top_words

DEMO_CAPTIONS = (
    "a cat lying on a blanket",
    "a cup of coffee on a saucer",
    "an astronaut in a space suit with a flag",
    "a rocket on the launch pad",
    "a man with a camera on a tripod",
)


def demo(model: LexVLA) -> None:
    """Each sample photo's top words, each demo caption's words and best photo."""
    photos = sample_photos()
    words = model.vocab.words
    image_weights = model.encode_images(list(photos.values())).word_weights
    print(f"model: {model.config.name}, vocabulary: {len(words)} words\n")
    for name, weights in zip(photos, image_weights):
        listed = ", ".join(w for w, _ in top_words(weights, words, 8))
        print(f"{name:<22} {listed}")
    print()
    text_weights = model.encode_queries(list(DEMO_CAPTIONS)).word_weights
    images = model.index_vectors(image_weights, "document").double()
    queries = model.index_vectors(text_weights, "query").double()
    names = list(photos)
    for caption, weights, scores in zip(DEMO_CAPTIONS, text_weights, queries @ images.T):
        listed = ", ".join(w for w, _ in top_words(weights, words, 6))
        print(f"{caption!r}\n    words: {listed}\n    best photo: {names[int(scores.argmax())]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    parser.add_argument("--model", default=None, help="checkpoint folder or config name")
    parser.add_argument("--top", type=int, default=15, help="how many words to print")
    sub = parser.add_subparsers(dest="command", required=True)
    text = sub.add_parser("encode-text", help="top words of a query (or of a caption document)")
    text.add_argument("text", help="the query or caption")
    text.add_argument(
        "--encoder",
        default=None,
        help="query encoder (default: the model's query_encoder); 'lm' is the caption encoder",
    )
    image = sub.add_parser("encode-image", help="top words of an image")
    image.add_argument("path", type=Path, help="image file")
    image.add_argument("--patches", action="store_true", help="also print each patch's top word")
    sub.add_parser("demo", help="the sample photos' words and the photo each demo caption finds")
    args = parser.parse_args(argv)

    if args.command == "encode-text" and not args.text.strip():
        parser.error("the text is empty")
    if args.command == "encode-image" and not args.path.is_file():
        parser.error(f"{args.path} is not a file")
    model = load_encoder(args.model)
    if args.command == "demo":
        demo(model)
        return 0
    words = model.vocab.words
    if args.command == "encode-text":
        try:
            weights = model.encode_queries([args.text], args.encoder).word_weights[0]
        except ValueError as exc:
            parser.error(str(exc))
    else:
        picture = load_image(args.path)
        weights = model.encode_images([picture]).word_weights[0]
    active = int((weights > 0).sum())
    print(f"{active} active words; top {args.top}:")
    for word, weight in top_words(weights, words, args.top):
        print(f"  {word:<16} {weight:.3f}")
    if args.command == "encode-image" and args.patches:
        out = model.encode_patches([picture])
        rows, cols = out.grid
        best = out.patch_word_weights[0].argmax(dim=-1).view(rows, cols)
        print(f"top word per patch ({rows}x{cols}):")
        width = max(len(words[i]) for i in best.flatten().tolist())
        for row in best.tolist():
            print("  " + " ".join(f"{words[i]:<{width}}" for i in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
