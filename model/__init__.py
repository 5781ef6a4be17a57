"""LexVLA encoders: images and captions as sparse, non-negative word vectors.

``load_encoder()`` returns the default model that ships in the repo; pass a named
config (``model/configs/NAME.json``) or a checkpoint folder for another.
"""

from __future__ import annotations

from pathlib import Path

from .config import LexVLAConfig, load_named_config, named_configs
from .lexvla import LexicalOutput, LexVLA
from .vocabulary import Vocabulary

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "lexvla-lite0-smollm2"

__all__ = [
    "DEFAULT_CHECKPOINT",
    "LexVLA",
    "LexVLAConfig",
    "LexicalOutput",
    "Vocabulary",
    "load_encoder",
]


def load_encoder(name_or_path: str | Path | None = None) -> LexVLA:
    """The default checkpoint (``None``/``"default"``), a checkpoint folder, or a named config.

    A named config builds a fresh, untrained model (tests and new training runs).
    """
    if name_or_path is None or name_or_path == "default":
        return LexVLA.from_pretrained(DEFAULT_CHECKPOINT)
    if Path(name_or_path).is_dir():
        return LexVLA.from_pretrained(name_or_path)
    if str(name_or_path) in named_configs():
        return LexVLA.from_config(load_named_config(str(name_or_path)))
    raise ValueError(
        f"{name_or_path!r} is neither a checkpoint folder nor a named config "
        f"({', '.join(named_configs())})"
    )
