"""The Ray runner: an ingest batch's missing shards encoded on a Ray cluster.

Ray Data reads the plan, one row per shard (its items), decodes each shard in a CPU task
(:func:`indexer.decode.load_item`) and encodes it in a pool of encoder actors: one GPU
each where the cluster has GPUs, else ``ray_actor_cpus`` CPUs each. An actor runs the
image and caption stages (:mod:`indexer.stages`) over the shard in the chunks the local
runner uses. This process takes the encoded shards in plan order, deduplicates each
chunk against everything before it (:class:`~indexer.stages.Deduplicator`, the local
runner's rule) and commits the shard (:class:`~indexer.stages.ShardWriter`): the shards
are those the local runner writes, and a killed job resumes from them the same way. Ray
restarts a lost actor and retries its shard; a lost job resumes on rerun.

An actor sees only its own shard, so an image whose twin is in an earlier shard of the
same job is encoded there and then dropped here.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .decode import load_item, set_pixel_limit
from .options import JobError, JobOptions
from .records import ImageRecord, Item, SkipReason, split_caption_id
from .shards import LiveState, Vector
from .stages import Deduplicator, ShardWriter

if TYPE_CHECKING:
    import ray

    from .stages import CaptionEncoding, ImageEncoding

log = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]  # a Ray Data batch in numpy format: column -> values
Known = dict[str, float]  # sha256 -> the last plan position where it is surely a duplicate
DECODER_MEMORY = 128 * 2**20  # a decoding worker process (Ray, Pillow, numpy; no PyTorch)


@dataclass(frozen=True)
class ActorPool:
    """The encoder actors a job gets: how many, and what each one holds."""

    actors: int
    gpus: int  # per actor: 1 on a cluster with GPUs, else 0
    cpus: int  # per CPU actor, also its encoder threads

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    @property
    def actor_cpus(self) -> int | None:
        """Ray CPUs of one actor (``None``: Ray's default beside a GPU)."""
        return None if self.gpus else self.cpus


def connect(options: JobOptions) -> ActorPool:
    """Join the cluster at ``options.ray`` (unless this process has) and size the pool."""
    import ray

    assert options.ray is not None
    if not ray.is_initialized():
        try:
            ray.init(address=options.ray, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise JobError(f"--ray {options.ray}: cannot join the Ray cluster: {exc}") from exc
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if options.device.startswith("cuda") and not gpus:
        raise JobError(f"--device {options.device}: the Ray cluster has no GPU (use --device cpu)")
    use_gpus = gpus > 0 and options.device != "cpu"
    actors = options.ray_actors or (gpus if use_gpus else 1)
    return ActorPool(actors, 1 if use_gpus else 0, options.ray_actor_cpus)


def known_content(state: LiveState, plan: Sequence[Item], todo: dict[int, range]) -> Known:
    """The content the index already holds, as ``sha256 -> position``: an image at a plan
    position up to that one with that content is surely a duplicate (its first owner is
    not re-read before it), so actors need not encode it; after it, the owner's new
    content may have replaced it, and this process decides."""
    pending = {plan[i].id: i for positions in todo.values() for i in positions}
    return {sha: pending.get(image_id, math.inf) for sha, image_id in state.hashes.items()}


@dataclass
class EncodedShard:
    """What an actor returns for one shard: the records as decoded, the outcomes after
    its own encoding (twins within the shard and images without words marked), and the
    vectors of the images and captions it indexed."""

    shard: int
    decoded: list[ImageRecord]
    outcomes: list[ImageRecord]
    images: list[Vector]
    captions: list[Vector]
    encoded_images: int = 0
    encoded_captions: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per stage


def decode_shard(row: dict[str, Any], image_size: int, max_pixels: int | None) -> dict[str, Any]:
    """A Ray Data row of a shard's items -> the row of its decoded items (a CPU task)."""
    set_pixel_limit(max_pixels)
    started = time.monotonic()
    loaded = [load_item(item, image_size) for item in pickle.loads(row["items"])]
    seconds = time.monotonic() - started
    return {**row, "loaded": pickle.dumps(loaded), "decode": seconds}


@dataclass(frozen=True)
class EncoderSpec:
    """What every actor builds its encoder from: the job's model in the object store
    (so every actor has the very weights of the index, and nodes need no model files)."""

    model: ray.ObjectRef  # a LexVLA
    known: ray.ObjectRef  # Known: what the index holds, skipped without encoding
    device: str
    threads: int
    batch_size: int
    caption_batch_size: int
    captions: bool


class ShardEncoder:
    """A Ray Data actor: takes the job's model once, then encodes one shard per call."""

    def __init__(self, spec: EncoderSpec) -> None:
        import ray
        import torch

        from .encode import TermEncoder
        from .stages import CaptionEncoding, ImageEncoding

        encoder = TermEncoder(
            ray.get(spec.model), torch.device(spec.device), spec.caption_batch_size, spec.threads
        )
        self.spec = spec
        self.known: Known = ray.get(spec.known)
        self.images: ImageEncoding = ImageEncoding(encoder)
        self.captions: CaptionEncoding | None = (
            CaptionEncoding(encoder, progress=False) if spec.captions else None
        )

    def __call__(self, batch: Batch) -> Batch:
        columns = zip(batch["shard"], batch["start"], batch["loaded"], batch["decode"])
        encoded = [
            self.encode(int(shard), int(start), pickle.loads(loaded), float(decode))
            for shard, start, loaded, decode in columns
        ]
        return {"encoded": np.array([pickle.dumps(e) for e in encoded], dtype=object)}

    def encode(
        self, shard: int, start: int, loaded: list[Any], decode_seconds: float
    ) -> EncodedShard:
        """A shard (from plan position ``start``) through the image stage chunk by chunk,
        then its captions; what the index surely holds already and twins within the shard
        are skipped, as the local runner skips them."""
        state = LiveState()  # the shard's images so far
        dedup = Deduplicator(state)
        images_before = self.images.encoded
        captions_before = self.captions.encoded if self.captions else 0
        result = EncodedShard(shard, [x.record for x in loaded], [], [], [])
        result.seconds = {"decode": decode_seconds, "encode_images": 0.0, "encode_captions": 0.0}
        for first in range(0, len(loaded), self.spec.batch_size):
            chunk = loaded[first : first + self.spec.batch_size]
            fresh = [self._unknown(x.record, start + first + i) for i, x in enumerate(chunk)]
            began = time.monotonic()
            records, vectors = self.images(chunk, dedup(fresh))
            result.seconds["encode_images"] += time.monotonic() - began
            for record in records:
                if record.indexed:
                    state.add(record, "")
            result.outcomes += records
            result.images += vectors
        began = time.monotonic()
        result.captions = self.captions(result.outcomes) if self.captions else []
        result.seconds["encode_captions"] = time.monotonic() - began
        result.encoded_images = self.images.encoded - images_before
        result.encoded_captions = (self.captions.encoded if self.captions else 0) - captions_before
        return result

    def _unknown(self, record: ImageRecord, position: int) -> ImageRecord:
        """``record``, marked a duplicate when the index surely holds its content."""
        if record.indexed and position <= self.known.get(record.sha256 or "", -1):
            return replace(record, indexed=False, reason=SkipReason.DUPLICATE.value)
        return record


def settle(
    encoded: EncodedShard, batch_size: int, dedup: Deduplicator, writer: ShardWriter
) -> None:
    """Commit an encoded shard: each chunk deduplicated against everything committed or
    settled before it, so the shard is the one the local runner writes."""
    vectors = dict(encoded.images)
    indexed: set[str] = set()
    for start in range(0, len(encoded.decoded), batch_size):
        marked = dedup(encoded.decoded[start : start + batch_size])
        outcomes = encoded.outcomes[start : start + batch_size]
        records = [mark if not mark.indexed else done for mark, done in zip(marked, outcomes)]
        chunk = [record.id for record in records if record.indexed]
        writer.add(encoded.shard, records, [(image_id, vectors[image_id]) for image_id in chunk])
        indexed.update(chunk)
    captions = [c for c in encoded.captions if split_caption_id(c[0])[0] in indexed]
    writer.commit(encoded.shard, captions)


@dataclass
class RayRun:
    """What :func:`run_ray` did: images and captions encoded, seconds per stage."""

    encoded_images: int = 0
    encoded_captions: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def run_ray(
    plan: Sequence[Item],
    shards: dict[int, range],
    pool: ActorPool,
    spec: EncoderSpec,
    image_size: int,
    max_pixels: int | None,
    dedup: Deduplicator,
    writer: ShardWriter,
    done: int = 0,
    progress: bool = True,
) -> RayRun:
    """Encode and commit ``shards`` (shard number -> plan positions) on the cluster
    :func:`connect` joined; ``done`` items are already committed (for the progress bar)."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # deduplication goes in plan order
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    rows = [
        {"shard": k, "start": positions.start, "items": pickle.dumps([plan[i] for i in positions])}
        for k, positions in shards.items()
    ]
    run = RayRun()
    timings: dict[str, float] = defaultdict(float)
    started = time.monotonic()
    with (
        logging_redirect_tqdm(),
        tqdm(total=len(plan), initial=done, unit="img", desc="images", disable=not progress) as bar,
    ):
        if rows:
            dataset = (
                ray.data.from_items(rows, override_num_blocks=len(rows))
                .map(
                    partial(decode_shard, image_size=image_size, max_pixels=max_pixels),
                    num_cpus=1,
                    # the process, a shard's pixels and their pickled copy; a reservation
                    # of its own also keeps Ray Data from fusing decoding into the actors
                    memory=DECODER_MEMORY + 2 * 3 * image_size**2 * max(map(len, shards.values())),
                )
                .map_batches(
                    ShardEncoder,
                    fn_constructor_kwargs={"spec": spec},
                    batch_size=1,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=pool.actors),
                    num_gpus=pool.gpus or None,
                    num_cpus=pool.actor_cpus,
                )
            )
            waited = time.monotonic()
            for row in dataset.iter_rows():
                timings["wait"] += time.monotonic() - waited
                encoded: EncodedShard = pickle.loads(row["encoded"])
                for stage, seconds in encoded.seconds.items():
                    timings[stage] += seconds
                run.encoded_images += encoded.encoded_images
                run.encoded_captions += encoded.encoded_captions
                settle(encoded, spec.batch_size, dedup, writer)
                bar.update(len(encoded.decoded))
                waited = time.monotonic()
    timings["pipeline"] = time.monotonic() - started
    run.timings = {stage: round(seconds, 3) for stage, seconds in timings.items()}
    return run
