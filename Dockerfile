# syntax=docker/dockerfile:1
# One image for every Herald process: `docker run IMAGE web|worker|beat|release`.
# The base is pinned to a patch release, written out in both FROM lines (scanners cannot resolve an
# ARG there). To refresh it, put the newest python:3.11.x-slim-bookworm tag in both and, where the
# build can reach a registry, append its digest as `@sha256:...`
# (`docker buildx imagetools inspect python:3.11.x-slim-bookworm` prints it).

# --- build: a virtualenv with every runtime dependency (compilers stay in this stage) -------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# pip compiles the dependencies' bytecode here, once; at runtime nothing writes any.
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

# --- final: the virtualenv, the code and the collected static files; no build tools --------
FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app/platform:/app \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000
# A fixed uid/gid so a Kubernetes securityContext (runAsUser, fsGroup) can name it.
RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin herald
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . /app
# Static files are collected at build time. Settings refuse to start without DEBUG off and a real
# SECRET_KEY, DATABASE_URL and REDIS_URL; this one command gets build-only placeholders (nothing is
# contacted, and they do not persist into the image's environment).
RUN DEBUG=false \
    SECRET_KEY=build-only-collectstatic-placeholder-not-a-secret \
    DATABASE_URL=postgres://build@127.0.0.1:1/build \
    REDIS_URL=redis://127.0.0.1:1/0 \
    python manage.py collectstatic --noinput -v 0
# Code and static files are owned by root and only readable by the process: the root filesystem
# can be mounted read-only; the only place written at runtime is /tmp (beat's schedule file).
USER 10001:10001
EXPOSE 8000
# Kubernetes probes /healthz and /readyz (see the Helm chart); a Docker HEALTHCHECK would only
# duplicate them and cannot serve the worker and beat processes of the same image.
HEALTHCHECK NONE
ENTRYPOINT ["/app/bin/herald-process"]
CMD ["web"]
