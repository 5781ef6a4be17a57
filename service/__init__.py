"""The search service: a FastAPI API and a web page over an index built by ``indexer``.

``python -m service --index INDEX`` serves it; :func:`create_app` builds the app.
"""

from .app import create_app
from .settings import Settings, get_settings

__all__ = ["Settings", "create_app", "get_settings"]
