"""Uploaded query images: size limits and decoding exactly as indexed images were decoded."""

from __future__ import annotations

from PIL import Image

from indexer import ImageSkipped, SkipReason

from .decoding import Decoder


class UploadError(ValueError):
    """An upload the service cannot use; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


STATUS_BY_REASON = {SkipReason.BOMB: 413, SkipReason.NOT_AN_IMAGE: 415}


def decode_upload(data: bytes, image_size: int, max_bytes: int, decoder: Decoder) -> Image.Image:
    """An RGB ``image_size`` square from uploaded bytes, or :class:`UploadError`.

    Goes through the indexer's :func:`~indexer.decode_image` (``decoder``), so a query
    image gets the vector it would get in the index; nothing is written to disk, so no
    message names a path.
    """
    if not data:
        raise UploadError(400, "the uploaded image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise UploadError(413, f"the upload has {len(data)} bytes; the limit is {max_bytes}")
    try:
        return decoder.decode(data, image_size).image
    except ImageSkipped as skipped:
        status = STATUS_BY_REASON.get(skipped.reason, 400)
        raise UploadError(status, f"{skipped.reason.value}: {skipped.detail}") from skipped
    except Exception as exc:  # a decoder bug on one odd upload is the upload's problem
        raise UploadError(400, f"cannot decode the image: {exc}") from exc
