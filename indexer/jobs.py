"""The job runner: ``build``, ``add``, ``remove`` and ``rebuild`` over one index folder.

An ingest job wires the stages: reader (:mod:`indexer.sources`) -> decode in worker
processes (:mod:`indexer.loader`) -> batched encoder (:mod:`indexer.encode`) ->
committed shards (:mod:`indexer.shards`) -> a published version
(:mod:`indexer.publish`). A killed job resumes at its first uncommitted shard when
the same command runs again; the summary counts the whole job either way.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .decode import DEFAULT_MAX_PIXELS
from .layout import (
    SHARDS,
    clean_staging,
    current_version,
    is_index_root,
    locked,
    open_published,
)
from .manifest import IndexManifest, ModelInfo
from .publish import publish_version, utc_now
from .records import ImageRecord, Item, SkipReason, caption_id
from .shards import Batch, BatchSpec, LiveState, ShardOutput, ShardStore
from .sources import Source

if TYPE_CHECKING:
    from model import LexVLA

    from .encode import TermEncoder
    from .loader import Loaded

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """A job that cannot run as asked; the message says what to do instead."""


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def default_threads(workers: int) -> int:
    """Encoder threads that leave a core to each decoding worker (oversubscribed OpenMP
    threads spin and can run several times slower than fewer threads)."""
    return max(1, (os.cpu_count() or 1) - workers)


@dataclass(frozen=True)
class JobOptions:
    """How a job runs (none of these change which documents end up in the index)."""

    model: str | None = None  # checkpoint folder or config name; None: the index's or default
    device: str = "auto"
    batch_size: int = 32
    caption_batch_size: int = 64
    workers: int = field(default_factory=default_workers)
    threads: int | None = None  # CPU encoder threads; None: PyTorch's default
    shard_size: int = 256  # new jobs only: a resumed job keeps its own
    captions: bool = True
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    lucene_threads: int = 2
    keep_versions: int = 2
    progress: bool = True


@dataclass
class JobSummary:
    """What a job did; ``report()`` is the end-of-job summary users read."""

    command: str
    index: str
    version: str | None = None
    indexed: int = 0  # images of this job in the index
    captions: int = 0  # captions of this job in the index
    captions_without_words: int = 0
    replaced: int = 0  # images that replaced an older one with the same id
    skipped: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    encoded_images: int = 0  # by this run (a resumed run skips committed shards)
    encoded_captions: int = 0
    resumed_shards: int = 0
    total_images: int = 0  # in the published version
    total_captions: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def report(self) -> str:
        lines = [
            f"{self.command} {self.index}: {self.note}"
            if self.note
            else f"{self.command} {self.index}"
        ]
        if self.command in ("build", "add"):
            lines.append(f"  indexed   {self.indexed} images, {self.captions} captions")
            if self.replaced:
                lines.append(f"  replaced  {self.replaced} images (same id, new content)")
            for reason, count in sorted(self.skipped.items()):
                lines.append(f"  skipped   {count} {reason}")
            if self.captions_without_words:
                lines.append(
                    f"  skipped   {self.captions_without_words} captions with no active words"
                )
            pipeline = self.timings.get("pipeline", 0.0)
            rate = self.encoded_images / pipeline if pipeline else 0.0
            lines.append(
                f"  encoded   {self.encoded_images} images, {self.encoded_captions} captions "
                f"this run ({rate:.1f} images/s); {self.resumed_shards} shards resumed"
            )
        if self.command == "remove":
            lines.append(f"  removed   {len(self.removed)} images")
            if self.not_found:
                lines.append(f"  not found {len(self.not_found)}: {', '.join(self.not_found[:20])}")
        if self.version:
            lines.append(
                f"  published {self.version}: {self.total_images} images, "
                f"{self.total_captions} captions"
            )
        lines.append(f"  time      {self.seconds:.1f} s")
        return "\n".join(lines)

    def published(self, manifest: IndexManifest) -> None:
        self.version = manifest.version
        self.total_images = manifest.images
        self.total_captions = manifest.captions
        self.timings.update({k: v for k, v in manifest.build.items() if isinstance(v, float)})


def _mark_duplicate_ids(items: list[Item]) -> list[Item]:
    """Later items with an id seen before are skipped (the first one wins)."""
    first: dict[str, str] = {}
    marked = []
    for item in items:
        if item.skip is None and item.id in first:
            item = replace(
                item, skip=SkipReason.DUPLICATE_ID.value, detail=f"first: {first[item.id]}"
            )
        elif item.skip is None:
            first[item.id] = item.path
        marked.append(item)
    return marked


def _latest_model(store: ShardStore) -> ModelInfo:
    specs = [b.spec.model for b in store.batches() if b.spec.model is not None]
    if not specs:
        raise JobError("the index holds no ingest batch")
    return ModelInfo(**specs[-1])


def _load_model(source: str, preloaded: LexVLA | None) -> LexVLA:
    if preloaded is not None:
        return preloaded
    from model import load_encoder

    try:
        return load_encoder(source)
    except (ValueError, FileNotFoundError) as exc:
        raise JobError(f"--model {source}: {exc}") from exc


def _check_same_model(info: ModelInfo, expected: ModelInfo, root: Path) -> None:
    if info.fingerprint != expected.fingerprint:
        raise JobError(
            f"{root} holds vectors of model {expected.name!r} ({expected.source}, fingerprint "
            f"{expected.fingerprint}); --model {info.source} is {info.name!r} (fingerprint "
            f"{info.fingerprint}). Vectors of different models cannot be mixed: build a new index."
        )


class _Ingest:
    """One ``build`` or ``add`` job: finds or starts its batch, encodes, publishes."""

    def __init__(self, kind: str, source: Source, root: Path, options: JobOptions) -> None:
        self.kind = kind
        self.source = source
        self.root = root
        self.options = options
        self.store = ShardStore(root / SHARDS)
        self.summary = JobSummary(kind, str(root))

    def find_batch(self) -> Batch | None:
        """The unfinished batch of this same command, or ``None`` to start one.

        Raises when another job is unfinished or the command makes no sense here.
        """
        request = self.source.to_json()
        unfinished = self.store.unfinished()
        if unfinished is not None:
            if unfinished.kind == self.kind and unfinished.spec.request == request:
                return unfinished
            raise JobError(
                f"{self.root} has an unfinished {unfinished.kind} "
                f"({_describe(unfinished)}): run that command again to finish it first"
            )
        batches = self.store.batches()
        if (
            self.kind == "build"
            and batches
            and not (batches[0].kind == "build" and batches[0].spec.request == request)
        ):
            raise JobError(
                f"{self.root} already holds an index: use `add`, `remove` or `rebuild`, "
                "or choose a new --out"
            )
        return None

    def start_batch(self, model: LexVLA | None) -> tuple[Batch, LexVLA]:
        if self.kind == "add":
            published = open_published(self.root).manifest.model
            source = self.options.model or published.source
        else:
            source = self.options.model or "default"
        loaded = _load_model(source, model)
        info = ModelInfo.of(loaded, source)
        if self.kind == "add":
            _check_same_model(info, published, self.root)
        plan = _mark_duplicate_ids(self.source.items())
        if not plan:
            log.warning("no files in %s", self.source.describe())
        spec = BatchSpec(
            kind=self.kind,
            request=self.source.to_json(),
            model=asdict(info),
            shard_size=self.options.shard_size,
            captions=self.options.captions,
            created=utc_now(),
        )
        return self.store.create(spec, plan), loaded

    def resume_batch(self, batch: Batch, model: LexVLA | None) -> LexVLA:
        assert batch.spec.model is not None
        expected = ModelInfo(**batch.spec.model)
        source = self.options.model or expected.source
        loaded = _load_model(source, model)
        _check_same_model(ModelInfo.of(loaded, source), expected, self.root)
        log.info("resuming the unfinished %s of %s", self.kind, self.source.describe())
        return loaded

    def run(self, model: LexVLA | None) -> JobSummary:
        from .encode import TermEncoder, resolve_device

        started = time.monotonic()
        try:
            device = resolve_device(self.options.device)
        except ValueError as exc:
            raise JobError(str(exc)) from exc
        with locked(self.root):
            clean_staging(self.root)
            self.store.clean_temp()
            batch = self.find_batch()
            if batch is None and self.kind == "build" and self.store.batches():
                # find_batch lets this through only when it is a build of the same source
                batch = self.store.batches()[0]
                self.summary.note = "already built from this source; nothing to do"
            else:
                if batch is None:
                    batch, loaded = self.start_batch(model)
                else:
                    loaded = self.resume_batch(batch, model)
                encoder = TermEncoder(
                    loaded, device, self.options.caption_batch_size, self.options.threads
                )
                self.encode(batch, encoder)
                manifest = publish_version(
                    self.root,
                    self.store,
                    _latest_model(self.store),
                    threads=self.options.lucene_threads,
                    keep=self.options.keep_versions,
                )
                batch.mark_done({"version": manifest.version, "finished": utc_now()})
            self._tally(batch)
            if current_version(self.root):
                self.summary.published(open_published(self.root).manifest)
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def encode(self, batch: Batch, encoder: TermEncoder) -> None:
        """Encode and commit every shard the batch still lacks."""
        from .loader import load_batches

        plan = batch.plan()
        ranges = batch.shard_ranges(len(plan))
        committed = set(batch.committed())
        self.summary.resumed_shards = len(committed)
        todo = [k for k in range(len(ranges)) if k not in committed]
        chunks: list[list[int]] = []
        owner: list[int] = []
        for k in todo:
            for start in range(ranges[k].start, ranges[k].stop, self.options.batch_size):
                chunks.append(
                    list(range(start, min(start + self.options.batch_size, ranges[k].stop)))
                )
                owner.append(k)
        last_chunk = {k: i for i, k in enumerate(owner)}
        state = self.store.replay()
        done_items = sum(len(ranges[k]) for k in committed)
        timings: dict[str, float] = defaultdict(float)
        pipeline_started = time.monotonic()
        output = ShardOutput()
        with (
            logging_redirect_tqdm(),
            tqdm(
                total=len(plan),
                initial=done_items,
                unit="img",
                desc="images",
                disable=not self.options.progress,
            ) as bar,
        ):
            waited = time.monotonic()
            loader = load_batches(
                plan, chunks, encoder.image_size, self.options.workers, self.options.max_pixels
            )
            for i, loaded in enumerate(loader):
                timings["decode_wait"] += time.monotonic() - waited
                k = owner[i]
                began = time.monotonic()
                self._encode_images(loaded, encoder, state, batch.origin(k), output)
                timings["encode_images"] += time.monotonic() - began
                bar.update(len(loaded))
                if last_chunk[k] == i:
                    began = time.monotonic()
                    if batch.spec.captions:
                        self._encode_captions(encoder, output)
                    timings["encode_captions"] += time.monotonic() - began
                    batch.commit(k, output)
                    output = ShardOutput()
                waited = time.monotonic()
        timings["pipeline"] = time.monotonic() - pipeline_started
        self.summary.timings.update({k: round(v, 3) for k, v in timings.items()})

    def _encode_images(
        self,
        loaded: Sequence[Loaded],
        encoder: TermEncoder,
        state: LiveState,
        origin: str,
        output: ShardOutput,
    ) -> None:
        """Deduplicate by content, encode what is new, add outcomes to the shard."""
        records: list[ImageRecord] = []
        fresh: dict[str, str] = {}  # sha256 -> image id, for twins within this chunk
        for item in loaded:
            record = item.record
            sha = record.sha256
            if record.indexed and sha is not None:
                twin = state.hashes.get(sha) or fresh.get(sha)
                if twin is not None:
                    detail = "unchanged" if twin == record.id else f"same content as {twin}"
                    record = replace(
                        record, indexed=False, reason=SkipReason.DUPLICATE.value, detail=detail
                    )
                else:
                    fresh[sha] = record.id
            records.append(record)
        to_encode = [i for i, r in enumerate(records) if r.indexed]
        images = []
        for i in to_encode:
            image = loaded[i].image
            assert image is not None  # a decoded record carries its image
            images.append(image)
        vectors = encoder.images(images)
        self.summary.encoded_images += len(to_encode)
        for i, terms in zip(to_encode, vectors):
            if not terms:
                records[i] = replace(
                    records[i],
                    indexed=False,
                    reason=SkipReason.NO_WORDS.value,
                    detail="all impacts are 0",
                )
                continue
            state.add(records[i], origin)
            output.images.append((records[i].id, terms))
        for record in records:
            if not record.indexed:
                log.warning("skipped %s: %s (%s)", record.id, record.reason, record.detail)
        output.records.extend(records)

    def _encode_captions(self, encoder: TermEncoder, output: ShardOutput) -> None:
        ids, texts = [], []
        for record in output.records:
            if record.indexed:
                for position, text in enumerate(record.captions):
                    ids.append(caption_id(record.id, position))
                    texts.append(text)
        if not texts:
            return
        with tqdm(
            total=len(texts),
            unit="cap",
            desc="captions",
            leave=False,
            disable=not self.options.progress,
        ) as bar:
            for start in range(0, len(texts), encoder.caption_batch_size * 4):
                stop = start + encoder.caption_batch_size * 4
                for doc_id, terms in zip(ids[start:stop], encoder.captions(texts[start:stop])):
                    if terms:
                        output.captions.append((doc_id, terms))
                bar.update(len(texts[start:stop]))
        self.summary.encoded_captions += len(texts)

    def _tally(self, batch: Batch) -> None:
        """Counts of the whole batch, read back from its shards (the same after a resume)."""
        before = self.store.replay(before=batch)
        skipped: Counter[str] = Counter()
        captions_expected = 0
        for index in batch.committed():
            for record in batch.records(index):
                if record.indexed:
                    self.summary.indexed += 1
                    self.summary.replaced += record.id in before.images
                    captions_expected += len(record.captions) if batch.spec.captions else 0
                else:
                    skipped[record.reason or "unknown"] += 1
            self.summary.captions += sum(1 for _ in batch.vectors(index, "captions"))
        self.summary.skipped = dict(skipped)
        self.summary.captions_without_words = captions_expected - self.summary.captions


def _describe(batch: Batch) -> str:
    request = batch.spec.request
    if batch.kind == "remove":
        return f"--ids {' '.join(request['ids'][:5])}{' ...' if len(request['ids']) > 5 else ''}"
    flag = "--images" if request["kind"] == "images" else "--manifest"
    return f"{flag} {request['path']}"


def _require_index(root: Path) -> None:
    if not is_index_root(root):
        raise JobError(f"no index at {root}: create one with `python -m indexer build`")


def build(
    source: Source, out: Path, options: JobOptions, model: LexVLA | None = None
) -> JobSummary:
    """Index a folder or manifest into a new index at ``out`` (or finish a killed build).

    ``model`` skips loading ``options.model`` (tests pass an already loaded one).
    """
    if out.exists() and not out.is_dir():
        raise JobError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_index_root(out):
        raise JobError(f"--out {out} exists and is not an index: choose a new or empty folder")
    return _Ingest("build", source, out, options).run(model)


def add(
    source: Source, index: Path, options: JobOptions, model: LexVLA | None = None
) -> JobSummary:
    """Add new images to a published index; duplicates by content are skipped."""
    _require_index(index)
    if current_version(index) is None and ShardStore(index / SHARDS).unfinished() is None:
        raise JobError(f"nothing is published at {index} yet: finish its build first")
    return _Ingest("add", source, index, options).run(model)


def remove(index: Path, ids: Sequence[str], options: JobOptions) -> JobSummary:
    """Delete images (and their captions) by id; publishes a new version."""
    _require_index(index)
    started = time.monotonic()
    summary = JobSummary("remove", str(index))
    request = {"ids": sorted(set(ids))}
    store = ShardStore(index / SHARDS)
    with locked(index):
        clean_staging(index)
        store.clean_temp()
        batch = store.unfinished()
        if batch is not None and not (batch.kind == "remove" and batch.spec.request == request):
            raise JobError(
                f"{index} has an unfinished {batch.kind} ({_describe(batch)}): "
                "run that command again to finish it first"
            )
        if batch is None:
            live = store.replay()
            found = [i for i in request["ids"] if i in live.images]
            if not found:
                raise JobError(f"none of the ids are in {index}: {', '.join(request['ids'][:20])}")
            batch = store.create(BatchSpec("remove", request, created=utc_now()), removed=found)
        summary.removed = batch.removed()
        summary.not_found = sorted(set(request["ids"]) - set(summary.removed))
        manifest = publish_version(
            index,
            store,
            _latest_model(store),
            threads=options.lucene_threads,
            keep=options.keep_versions,
        )
        batch.mark_done({"version": manifest.version, "finished": utc_now()})
        summary.published(manifest)
    summary.seconds = time.monotonic() - started
    return summary


def rebuild(index: Path, options: JobOptions) -> JobSummary:
    """Rebuild the Lucene indexes and metadata from the stored shards (no encoding)."""
    _require_index(index)
    started = time.monotonic()
    summary = JobSummary("rebuild", str(index))
    store = ShardStore(index / SHARDS)
    with locked(index):
        clean_staging(index)
        store.clean_temp()
        unfinished = store.unfinished()
        if unfinished is not None:
            raise JobError(
                f"{index} has an unfinished {unfinished.kind} ({_describe(unfinished)}): "
                "run that command again to finish it first"
            )
        manifest = publish_version(
            index,
            store,
            _latest_model(store),
            full=True,
            threads=options.lucene_threads,
            keep=options.keep_versions,
        )
        summary.published(manifest)
    summary.seconds = time.monotonic() - started
    return summary
