# syntax=docker/dockerfile:1
# Footfall's image: one image for the gateway and the stream worker (target `runtime`, the
# default command is the gateway), and a larger one for the batch job (target `batch`, with
# the Java runtime Spark needs). Both run as the unprivileged user 1001 (the chart's
# securityContext), with a read-only root filesystem: /tmp and the worker's /data are
# volumes.
#
#   docker build -t footfall/footfall:0.1.0 --target runtime .
#   docker build -t footfall/footfall:0.1.0-batch --target batch .
#   docker build --build-arg EXTRAS=s3 ...     # + s3fs, for an s3:// archive (see below)
#
# The project is installed in place (editable) under /app because the gateway serves the
# tracker from web/tracker/ next to its package. The counting core is compiled there with
# mypyc (footfall/native.py; mypy only in a scratch environment of the build stage), and its
# Rust counter (native/) with the toolchain of the official Rust image, in the build stage
# only.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The Rust counter's crates need Rust 1.86 or later.
ARG RUST_IMAGE=rust:1.86-slim-bookworm

FROM ${RUST_IMAGE} AS rust

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/footfall \
    PATH=/opt/footfall/bin:$PATH \
    HOME=/tmp
RUN groupadd --system --gid 1001 footfall \
 && useradd --system --uid 1001 --gid 1001 --home-dir /tmp --shell /usr/sbin/nologin footfall

FROM base AS build
# Extra packages for the archive's filesystem, space separated: `s3` adds s3fs.
ARG EXTRAS=""
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
RUN pip install uv \
 && apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY footfall ./footfall
COPY agents ./agents
COPY tables ./tables
COPY batch ./batch
COPY web ./web
COPY native ./native
RUN uv venv /opt/footfall \
 && uv pip install --python /opt/footfall/bin/python -e . \
 && if [ -n "$EXTRAS" ]; then \
      for extra in $EXTRAS; do case "$extra" in \
        s3) uv pip install --python /opt/footfall/bin/python s3fs ;; \
        *) echo "unknown extra: $extra" >&2; exit 1 ;; \
      esac; done; \
    fi \
 && uv venv /opt/mypyc \
 && uv pip install --python /opt/mypyc/bin/python mypy setuptools \
 && PYTHONPATH=/opt/mypyc/lib/python3.11/site-packages /opt/footfall/bin/footfall native build \
 && rm -rf /opt/mypyc /tmp/.cache/footfall/cargo-target \
 && /opt/footfall/bin/python -m compileall -q /app /opt/footfall >/dev/null

FROM build AS build-batch
RUN uv pip install --python /opt/footfall/bin/python -e '.[spark]' \
 && /opt/footfall/bin/python -m compileall -q /opt/footfall >/dev/null

FROM base AS runtime
COPY --from=build /opt/footfall /opt/footfall
COPY --from=build /app /app
WORKDIR /app
USER 1001:1001
# gateway (FOOTFALL_GATEWAY_PORT), worker web server (FOOTFALL_WEB_PORT)
EXPOSE 8000 6066
ENTRYPOINT ["footfall"]
CMD ["gateway"]

FROM base AS batch
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build-batch /opt/footfall /opt/footfall
COPY --from=build-batch /app /app
WORKDIR /app
USER 1001:1001
ENTRYPOINT ["footfall"]
CMD ["reprocess", "--help"]
