"""``python -m model.evaluate``: retrieval on the 1,000 images x 5,000 captions protocol.

Image->text and text->image Recall@1/5/10 through exactly what the index stores
(top-k and the one quantizer), mean active words, the dense baseline of the same
backbones trained in the same run, and published figures for reference.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from .dense import train_dense_baseline
from .lexvla import LexVLA
from .retrieval import RetrievalReport, dense_report, lexical_report
from .splits import SplitFeatures, load_split_features

log = logging.getLogger(__name__)

# Published Flickr8k results of a model trained on Flickr8k (Kiros et al. 2014, VSE).
PUBLISHED = {"VSE (Kiros et al. 2014)": {"i2t": (18.0, 40.9, 55.0), "t2i": (12.5, 37.0, 51.5)}}


@torch.no_grad()
def encode_images(model: LexVLA, split: SplitFeatures, batch: int = 250) -> torch.Tensor:
    """Word weights of every image of a split, from its cached features.  # (images, vocab)"""
    device = model.codebook.device
    return torch.cat(
        [
            model.image_weights(split.images[i : i + batch].to(device).float())[0].cpu()
            for i in range(0, len(split.images), batch)
        ]
    )


@torch.no_grad()
def encode_captions(model: LexVLA, split: SplitFeatures, batch: int = 1000) -> torch.Tensor:
    """Word weights of every caption of a split, from its cached features.  # (captions, vocab)"""
    device = model.codebook.device
    return torch.cat(
        [
            model.text_weights(split.captions[i : i + batch].to(device)).cpu()
            for i in range(0, len(split.captions), batch)
        ]
    )


def encode_split(model: LexVLA, split: SplitFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """Word weights of every image and caption of a split."""
    return encode_images(model, split), encode_captions(model, split)


def frequent_words(model: LexVLA, image_weights: torch.Tensor, n: int = 20) -> list[str]:
    """The ``n`` words most image documents keep (the paper's "false discovery" check:
    a word every image has explains nothing), with their share of images in percent."""
    kept = (model.index_vectors(image_weights, "document") > 0).float().mean(dim=0)
    top = kept.argsort(descending=True)[:n]
    return [f"{model.vocab.words[i]} {100 * float(kept[i]):.0f}" for i in top]


def lexical_retrieval(
    model: LexVLA, split: SplitFeatures, encoded: tuple[torch.Tensor, ...] | None = None
) -> RetrievalReport:
    """Recall through the index vectors of the model's sparse config."""
    images, captions = encoded or encode_split(model, split)
    sparse = model.config.sparse
    return lexical_report(
        images,
        captions,
        sparse.doc_top_k,
        sparse.query_top_k,
        sparse.quant_scale,
        model.config.normalize,
    )


def main() -> None:
    from . import load_encoder

    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help="folder with captions.jsonl")
    parser.add_argument("--split", default="dev", help="split to evaluate (default: dev)")
    parser.add_argument("--model", default=None, help="checkpoint folder (default: shipped)")
    parser.add_argument("--cache", type=Path, default=Path("cache/features"), help="feature cache")
    parser.add_argument("--no-baseline", action="store_true", help="skip the dense baseline")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    model = load_encoder(args.model)
    test = load_split_features(model, args.data, args.split, args.cache)
    encoded = encode_split(model, test)
    results = {"lexical": lexical_retrieval(model, test, encoded)}
    frequent = frequent_words(model, encoded[0])
    if not args.no_baseline:
        train = load_split_features(model, args.data, "train", args.cache, flipped=True)
        baseline = train_dense_baseline(train, seed=0)
        results["dense baseline"] = dense_report(*baseline.encode(test))
    print(f"{model.config.name} on {args.data.name} {args.split}: R@1 / R@5 / R@10")
    for name, report in results.items():
        print(f"  {name:<16} {report.row()}")
    for name, figures in PUBLISHED.items():
        print(
            f"  {name:<16} i2t {' / '.join(map(str, figures['i2t']))} | "
            f"t2i {' / '.join(map(str, figures['t2i']))}"
        )
    if "dense baseline" in results:
        lex, dense = results["lexical"], results["dense baseline"]
        print(
            f"  lexical / dense R@1: i2t {lex.i2t[1] / dense.i2t[1]:.2f}, "
            f"t2i {lex.t2i[1] / dense.t2i[1]:.2f}"
        )
    print(f"  most frequent image words (% of images): {', '.join(frequent)}")
    if args.json:
        output: dict[str, object] = {k: asdict(v) for k, v in results.items()}
        output["frequent_image_words"] = frequent
        args.json.write_text(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
