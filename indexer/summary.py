"""What a job did: :class:`JobSummary`, the end-of-job report users read."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .manifest import IndexManifest
from .shards import Batch, ShardStore


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
    search_shards: int = 1  # of the published version
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
            shards = f" in {self.search_shards} search shards" if self.search_shards > 1 else ""
            lines.append(
                f"  published {self.version}: {self.total_images} images, "
                f"{self.total_captions} captions{shards}"
            )
        lines.append(f"  time      {self.seconds:.1f} s")
        return "\n".join(lines)

    def published(self, manifest: IndexManifest) -> None:
        """Take the counts and build timings of the version the job published."""
        self.version = manifest.version
        self.total_images = manifest.images
        self.total_captions = manifest.captions
        self.search_shards = manifest.shards
        self.timings.update({k: v for k, v in manifest.build.items() if isinstance(v, float)})

    def count(self, store: ShardStore, batch: Batch) -> None:
        """Counts of the whole batch, read back from its shards (the same after a resume)."""
        before = store.replay(before=batch)
        skipped: Counter[str] = Counter()
        captions_expected = 0
        for index in batch.committed():
            for record in batch.records(index):
                if record.indexed:
                    self.indexed += 1
                    self.replaced += record.id in before.images
                    captions_expected += len(record.captions) if batch.spec.captions else 0
                else:
                    skipped[record.reason or "unknown"] += 1
            self.captions += sum(1 for _ in batch.vectors(index, "captions"))
        self.skipped = dict(skipped)
        self.captions_without_words = captions_expected - self.captions
