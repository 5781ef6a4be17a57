"""Training, evaluation and experiments on cached features (``python -m model.training``).

Nothing here is imported by the runtime (``model``, ``indexer``, ``service``).
"""
