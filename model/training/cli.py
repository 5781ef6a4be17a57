"""``python -m model.training COMMAND``: features, training, evaluation and experiments.

Every command reads a captioned image folder in the Flickr8k layout (``--data``) and
caches the frozen parts' features under ``--cache``. Commands:

- ``features``: compute and cache frozen backbone and LM features of splits;
- ``train``: train the adapters on cached features (resumable; best dev epoch kept);
- ``evaluate``: Recall@1/5/10 through the index vectors, with the dense baseline;
- ``class-prior``: choose the ImageNet class-word prior's weight on dev;
- ``patchdis``: patch-level discovery (PatchDis) on photo mosaics;
- ``sample-photos``: where each sample photo ranks for a plain query naming it;
- ``shards``: write image-caption pairs as WebDataset shards;
- ``stream-train``: the paper's recipe: pairs streamed from shards, backbones run live,
  LoRA on the LM, several processes (``torchrun``), resumable.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from .. import load_encoder
from .stream_cli import shards, shards_arguments, stream_train, stream_train_arguments

CACHE = Path("cache/features")


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with captions.jsonl")
    parser.add_argument("--cache", type=Path, default=CACHE, help="feature cache folder")


def _features_arguments(parser: argparse.ArgumentParser) -> None:
    _data_arguments(parser)
    parser.add_argument("--splits", nargs="+", default=["train", "dev"], help="splits to cache")
    parser.add_argument("--model", default=None, help="checkpoint folder or config name")
    parser.add_argument("--flip", action="store_true", help="also cache mirrored images")


def _features(args: argparse.Namespace) -> None:
    from .data import load_split
    from .features import caption_features, feature_paths, image_features

    model = load_encoder(args.model)
    args.cache.mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        pairs = load_split(args.data, split)
        paths = feature_paths(args.cache, split, model.config)
        image_features(model, pairs, paths["image"])
        captions = [c for p in pairs for c in p.captions]
        caption_features(model, captions, paths["text"], paths["sentences"])
        if args.flip:
            image_features(model, pairs, paths["image_flip"], flip=True)


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from .objective import TrainSettings

    _data_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, help="run folder (resumes if present)")
    parser.add_argument(
        "--init", default="lexvla-lite0-smollm2", help="config name or checkpoint to start from"
    )
    for name, value in asdict(TrainSettings()).items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=value, help=f"(default: {value})")
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"(default: {value})")


def _train(args: argparse.Namespace) -> None:
    from .objective import TrainSettings
    from .trainer import train

    fields = asdict(TrainSettings())
    settings = TrainSettings(**{name: getattr(args, name) for name in fields})
    print(f"best checkpoint: {train(args.init, args.data, args.out, args.cache, settings)}")


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _data_arguments(parser)
    parser.add_argument("--split", default="dev", help="split to evaluate (default: dev)")
    parser.add_argument(
        "--model",
        nargs="+",
        default=["default"],
        help="checkpoint folders (default: the shipped one), evaluated in one run",
    )
    parser.add_argument(
        "--config",
        default="",
        help="JSON sparse settings (or vision.average_mirror) to evaluate with, e.g. "
        '\'{"sparse": {"doc_top_k": 64}}\'',
    )
    parser.add_argument("--save", type=Path, help="write the (one) model with --config here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the dense baseline")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--live",
        action="store_true",
        help="encode the split from its photos and captions, not cached features (for "
        "checkpoints with LoRA or unfrozen backbone blocks; no dense baseline)",
    )


def _evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate
    from .starting_model import build_model

    if args.save and len(args.model) > 1:
        raise ValueError("--save writes one model: give one --model")
    figures = {}
    for source in args.model:
        model, _ = build_model(source, args.config)
        if args.live:
            from .live_eval import evaluate_live

            result = evaluate_live(model, args.data, args.split)
        else:
            result = evaluate(
                model, args.data, args.split, args.cache, baseline=not args.no_baseline
            )
        print(f"{source} ({result.name}) on {args.data.name} {args.split}: R@1 / R@5 / R@10")
        print("\n".join(result.lines()))
        figures[source] = result.to_json()
        if args.save:
            model.save_pretrained(args.save)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _class_prior_arguments(parser: argparse.ArgumentParser) -> None:
    _data_arguments(parser)
    parser.add_argument("--model", required=True, help="checkpoint folder to add the prior to")
    parser.add_argument("--split", default="dev", help="split that chooses the weight")
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3],
        help="prior weights to compare (the best R@1 sum wins; ties go to the larger)",
    )
    parser.add_argument("--out", type=Path, help="write the checkpoint with the best weight here")
    parser.add_argument("--save-weight", type=float, help="write --out with this weight instead")


def _class_prior(args: argparse.Namespace) -> None:
    from .class_prior import compute_class_words, sweep_prior_weights, with_prior
    from .splits import load_split_features

    model = load_encoder(args.model)
    split = load_split_features(model, args.data, args.split, args.cache)
    class_words = compute_class_words(model)
    print(f"{args.split}: prior weight, i2t R@1 / R@5 / R@10 | t2i R@1 / R@5 / R@10")
    best = (-1.0, 0.0)
    for weight, report in sweep_prior_weights(model, split, class_words, args.weights):
        print(f"  {weight:<5} {report.row()}")
        best = max(best, (report.i2t[1] + report.t2i[1], weight))
    print(f"best weight on {args.split}: {best[1]} (R@1 sum {best[0]:.1f})")
    if args.out:
        weight = best[1] if args.save_weight is None else args.save_weight
        with_prior(model, class_words, weight).save_pretrained(args.out)
        print(f"checkpoint with prior weight {weight}: {args.out}")


def _patchdis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with captions.jsonl")
    parser.add_argument("--split", default="dev", help="split to draw photos from")
    parser.add_argument("--model", default=None, help="checkpoint folder (default: shipped)")
    parser.add_argument("--mosaics", type=int, default=200, help="number of mosaics")
    parser.add_argument("--seed", type=int, default=0, help="mosaic and random-baseline seed")
    parser.add_argument("--save", type=Path, default=Path("out/patchdis"), help="PNG folder")
    parser.add_argument(
        "--window", type=int, default=7, help="patch neighbourhood (odd; 1: single patches)"
    )


def _patchdis(args: argparse.Namespace) -> None:
    from .data import load_split
    from .patchdis import run_patchdis

    pairs = load_split(args.data, args.split)
    model = load_encoder(args.model)
    result = run_patchdis(model, pairs, args.mosaics, args.seed, args.save, args.window)
    print(json.dumps(result, indent=2))
    chance = result["random_miou"]
    print(
        f"PatchDis mIoU {result['miou']:.1f} ({result['miou'] / chance:.2f}x random), "
        f"centred {result['miou_centred']:.1f} ({result['miou_centred'] / chance:.2f}x), "
        f"random {chance:.1f}"
    )


def _sample_photos_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", action="append", help="checkpoint folder (repeat to compare; default: shipped)"
    )
    parser.add_argument("--encoder", help="query encoder (default: each model's own)")


def _sample_photos(args: argparse.Namespace) -> None:
    from .sample_queries import SAMPLE_QUERIES, sample_photo_ranks

    for source in args.model or [None]:
        model = load_encoder(source)
        result = sample_photo_ranks(model, args.encoder)
        encoder = args.encoder or model.config.query_encoder
        print(f"{source or 'default'} ({encoder} queries): rank of the named photo of 13")
        for name, query in SAMPLE_QUERIES.items():
            print(f"  {result.ranks[name]:>2}  {name:<22} {query!r}")
        print(f"  hit rate at 1: {result.hit_rate(1):.2f}, at 3: {result.hit_rate(3):.2f}")


Arguments = Callable[[argparse.ArgumentParser], None]
Command = tuple[str, Arguments, Callable[[argparse.Namespace], None]]
COMMANDS: dict[str, Command] = {
    "features": ("cache frozen features of splits", _features_arguments, _features),
    "train": ("train the adapters on cached features", _train_arguments, _train),
    "evaluate": ("retrieval recall on a split", _evaluate_arguments, _evaluate),
    "class-prior": ("choose the class-word prior's weight", _class_prior_arguments, _class_prior),
    "patchdis": ("patch-level discovery on mosaics", _patchdis_arguments, _patchdis),
    "sample-photos": (
        "rank of each sample photo for a query naming it",
        _sample_photos_arguments,
        _sample_photos,
    ),
    "shards": ("write image-caption pairs as WebDataset shards", shards_arguments, shards),
    "stream-train": (
        "train on streamed pairs with live backbones and LoRA",
        stream_train_arguments,
        stream_train,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model.training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (summary, arguments, _) in COMMANDS.items():
        arguments(sub.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        COMMANDS[args.command][2](args)
    except ValueError as exc:
        parser.error(str(exc))
    return 0
