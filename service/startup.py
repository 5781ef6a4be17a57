"""Opening what the service serves: the index, the model that wrote it, the search worker."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from indexer import set_pixel_limit
from model import LexVLA, load_encoder, named_configs

from .decoding import Decoder
from .engine import SearchEngine
from .index_handle import Opener, ServedIndex, open_index
from .metrics import Metrics
from .settings import Settings

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start as configured; the message says what to fix."""


def model_source(settings: Settings, handle: ServedIndex) -> str:
    """``--model`` when given, else the model recorded in the (first) index's manifest."""
    return settings.model or handle.published.manifest.model.source


def check_model_source(source: str) -> None:
    """Fail early, without loading anything, when ``source`` names no model."""
    if source != "default" and not Path(source).is_dir() and source not in named_configs():
        raise StartupError(
            f"model {source!r} is neither 'default', a checkpoint folder nor a named config "
            f"({', '.join(named_configs())})"
        )


def check_index(root: Path) -> str:
    """Open and close the published index once (Lucene, metadata, manifest); its model."""
    handle = open_index(root)
    try:
        return handle.published.manifest.model.source
    finally:
        handle.retire()


def load_model(source: str) -> LexVLA:
    check_model_source(source)
    try:
        return load_encoder(source)
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot load model {source!r}: {exc}") from exc


def open_engine(settings: Settings, metrics: Metrics, opener: Opener = open_index) -> SearchEngine:
    """The model and the indexes (opened by ``opener``: in this process by default),
    checked against each other (not started)."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    set_pixel_limit(settings.max_image_pixels)
    handles: dict[str, ServedIndex] = {}
    try:
        for name, root in settings.index.items():
            handles[name] = opener(root)
        source = model_source(settings, next(iter(handles.values())))
        model = load_model(source)
        for name, handle in handles.items():
            log.info("index %s: version %s", name, handle.version)
        log.info("model %s (%s)", model.config.name, source)
        return SearchEngine(
            model,
            handles,
            metrics,
            Decoder(settings.max_decodes, metrics),
            max_batch=settings.max_batch,
            max_queue=settings.max_queue,
            queue_deadline_s=settings.queue_deadline_s,
            boost_factor=settings.boost_factor,
            plan=settings.search_plan,
            reload_interval_s=settings.reload_interval_s,
            heatmap_cache=settings.heatmap_cache,
            opener=opener,
        )
    except BaseException:
        for handle in handles.values():
            handle.retire()
        raise
