"""The jobs: ``build``, ``add``, ``remove`` and ``rebuild`` over one index folder.

Every job runs in one scaffold (:class:`_Job`): hold the index lock, clear what a killed
job left half-written, refuse to start beside another job's unfinished batch, publish a
version, and time the summary. An ingest job (``build``, ``add``) finds or starts its
batch and hands the missing shards to the runner (:mod:`indexer.runner`) with its
stages (:mod:`indexer.stages`). A killed job resumes at its first uncommitted shard
when the same command runs again; the summary counts the whole job either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .layout import SHARDS, clean_staging, current_version, is_index_root, locked, open_published
from .manifest import IndexManifest, ModelInfo
from .options import JobError, JobOptions
from .publish import publish_version, utc_now
from .shards import Batch, BatchSpec, ShardStore
from .sources import Source
from .summary import JobSummary

if TYPE_CHECKING:
    import torch

    from model import LexVLA

    from .ray_job import ActorPool

log = logging.getLogger(__name__)


def _describe(batch: Batch) -> str:
    request = batch.spec.request
    if batch.kind == "remove":
        return f"--ids {' '.join(request['ids'][:5])}{' ...' if len(request['ids']) > 5 else ''}"
    flag = "--images" if request["kind"] == "images" else "--manifest"
    return f"{flag} {request['path']}"


@dataclass
class _Job:
    """One job's scaffold, from lock to summary (entered with :func:`_job`)."""

    root: Path
    options: JobOptions
    store: ShardStore
    summary: JobSummary

    def unfinished(self, resumable: Callable[[Batch], bool]) -> Batch | None:
        """The unfinished batch this job may finish, or ``None``; raises for another one."""
        batch = self.store.unfinished()
        if batch is not None and not resumable(batch):
            raise JobError(
                f"{self.root} has an unfinished {batch.kind} ({_describe(batch)}): "
                "run that command again to finish it first"
            )
        return batch

    def publish(self, batch: Batch | None = None, full: bool = False) -> IndexManifest:
        """Publish the live documents as a new version (and mark ``batch`` done)."""
        manifest = publish_version(
            self.root,
            self.store,
            _latest_model(self.store),
            full=full,
            threads=self.options.lucene_threads,
            keep=self.options.keep_versions,
            shards=self.options.search_shards,
        )
        if batch is not None:
            batch.mark_done({"version": manifest.version, "finished": utc_now()})
        self.summary.published(manifest)
        return manifest


@contextmanager
def _job(command: str, root: Path, options: JobOptions) -> Iterator[_Job]:
    started = time.monotonic()
    job = _Job(root, options, ShardStore(root / SHARDS), JobSummary(command, str(root)))
    with locked(root):
        clean_staging(root)
        job.store.clean_temp()
        yield job
    job.summary.seconds = time.monotonic() - started


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


def _ingest_batch(
    job: _Job, kind: str, source: Source, model: LexVLA | None
) -> tuple[Batch, LexVLA]:
    """The batch to encode (resumed, or started with its plan) and the model to encode with."""
    request = source.to_json()
    batch = job.unfinished(lambda b: b.kind == kind and b.spec.request == request)
    if batch is not None:
        assert batch.spec.model is not None
        expected = ModelInfo(**batch.spec.model)
        name = job.options.model or expected.source
        loaded = _load_model(name, model)
        _check_same_model(ModelInfo.of(loaded, name), expected, job.root)
        log.info("resuming the unfinished %s of %s", kind, source.describe())
        return batch, loaded
    published = open_published(job.root).manifest.model if kind == "add" else None
    name = job.options.model or (published.source if published else "default")
    loaded = _load_model(name, model)
    info = ModelInfo.of(loaded, name)
    if published is not None:
        _check_same_model(info, published, job.root)
    from .stages import read_plan

    plan = read_plan(source)
    if not plan:
        log.warning("no files in %s", source.describe())
    spec = BatchSpec(
        kind=kind,
        request=request,
        model=asdict(info),
        shard_size=job.options.shard_size,
        captions=job.options.captions,
        created=utc_now(),
    )
    return job.store.create(spec, plan), loaded


def _device(name: str) -> torch.device:
    from .encode import resolve_device

    try:
        return resolve_device(name)
    except ValueError as exc:
        raise JobError(str(exc)) from exc


def _ray_pool(options: JobOptions) -> ActorPool:
    from .ray_job import connect

    return connect(options)


def _encode(job: _Job, batch: Batch, model: LexVLA, target: torch.device | ActorPool) -> None:
    """Run the batch's uncommitted shards through the stages on this machine (``target``
    a device) or on the Ray cluster (an actor pool)."""
    from .encode import TermEncoder
    from .stages import Deduplicator, ShardWriter

    options = job.options
    plan = batch.plan()
    ranges = batch.shard_ranges(len(plan))
    committed = set(batch.committed())
    job.summary.resumed_shards = len(committed)
    todo = {k: ranges[k] for k in range(len(ranges)) if k not in committed}
    state = job.store.replay()
    dedup, writer = Deduplicator(state), ShardWriter(batch, state)
    done = sum(len(ranges[k]) for k in committed)
    if options.ray is not None:
        import ray

        from .ray_job import ActorPool, EncoderSpec, known_content, run_ray

        assert isinstance(target, ActorPool)
        spec = EncoderSpec(
            model=ray.put(model),
            known=ray.put(known_content(state, plan, todo)),
            device=target.device,
            threads=target.cpus,
            batch_size=options.batch_size,
            caption_batch_size=options.caption_batch_size,
            captions=batch.spec.captions,
        )
        image_size = int(model.image.image_size)
        run = run_ray(
            plan,
            todo,
            target,
            spec,
            image_size,
            options.max_pixels,
            dedup,
            writer,
            done,
            options.progress,
        )
        job.summary.timings.update(run.timings)
        job.summary.encoded_images += run.encoded_images
        job.summary.encoded_captions += run.encoded_captions
        return
    import torch

    from .loader import load_batches
    from .runner import Stages, run_local
    from .stages import CaptionEncoding, ImageEncoding

    assert isinstance(target, torch.device)
    encoder = TermEncoder(model, target, options.caption_batch_size, options.encoder_threads)
    decode = partial(
        load_batches,
        image_size=encoder.image_size,
        workers=options.workers,
        max_pixels=options.max_pixels,
    )
    stages = Stages(
        decode=decode,
        dedup=dedup,
        images=ImageEncoding(encoder),
        captions=CaptionEncoding(encoder, options.progress) if batch.spec.captions else None,
        writer=writer,
    )
    timings = run_local(plan, todo, options.batch_size, stages, done, options.progress)
    job.summary.timings.update(timings)
    job.summary.encoded_images += stages.images.encoded
    job.summary.encoded_captions += stages.captions.encoded if stages.captions else 0


def _ingest(
    kind: str, source: Source, root: Path, options: JobOptions, model: LexVLA | None
) -> JobSummary:
    # before anything is written: the device, or the Ray cluster and its actors
    target = _device(options.device) if options.ray is None else _ray_pool(options)
    with _job(kind, root, options) as job:
        batches = job.store.batches()
        first = batches[0] if batches else None
        if kind == "build" and first is not None and job.store.unfinished() is None:
            if not (first.kind == "build" and first.spec.request == source.to_json()):
                raise JobError(
                    f"{root} already holds an index: use `add`, `remove` or `rebuild`, "
                    "or choose a new --out"
                )
            job.summary.note = "already built from this source; nothing to do"
            batch = first
        else:
            batch, loaded = _ingest_batch(job, kind, source, model)
            _encode(job, batch, loaded, target)
            job.publish(batch)
        job.summary.count(job.store, batch)
        if current_version(root):
            job.summary.published(open_published(root).manifest)
    return job.summary


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
    return _ingest("build", source, out, options, model)


def _require_index(root: Path) -> None:
    if not is_index_root(root):
        raise JobError(f"no index at {root}: create one with `python -m indexer build`")


def add(
    source: Source, index: Path, options: JobOptions, model: LexVLA | None = None
) -> JobSummary:
    """Add new images to a published index; duplicates by content are skipped."""
    _require_index(index)
    if current_version(index) is None and ShardStore(index / SHARDS).unfinished() is None:
        raise JobError(f"nothing is published at {index} yet: finish its build first")
    return _ingest("add", source, index, options, model)


def remove(index: Path, ids: Sequence[str], options: JobOptions) -> JobSummary:
    """Delete images (and their captions) by id; publishes a new version."""
    _require_index(index)
    request = {"ids": sorted(set(ids))}
    with _job("remove", index, options) as job:
        batch = job.unfinished(lambda b: b.kind == "remove" and b.spec.request == request)
        if batch is None:
            live = job.store.replay()
            found = [i for i in request["ids"] if i in live.images]
            if not found:
                raise JobError(f"none of the ids are in {index}: {', '.join(request['ids'][:20])}")
            spec = BatchSpec("remove", request, created=utc_now())
            batch = job.store.create(spec, removed=found)
        job.summary.removed = batch.removed()
        job.summary.not_found = sorted(set(request["ids"]) - set(job.summary.removed))
        job.publish(batch)
    return job.summary


def rebuild(index: Path, options: JobOptions) -> JobSummary:
    """Rebuild the Lucene indexes and metadata from the stored shards (no encoding)."""
    _require_index(index)
    with _job("rebuild", index, options) as job:
        job.unfinished(lambda _: False)
        job.publish(full=True)
    return job.summary
