# apipod in a container: docker build -t apipod . && docker run -p 8081:8081 -v apipod-data:/data apipod
# Two stages: the builder turns apipod and its dependencies into wheels; the final image installs those wheels
# offline, so it carries no compiler, no pip cache and no source tree.

FROM python:3.12-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8081 \
    DATABASE_URL=sqlite:////data/apipod.db
# The builder's wheels are mounted for this one step only (BuildKit, Docker 23+): they never become a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/apipod-*.whl \
    && groupadd --system --gid 10001 apipod \
    && useradd --system --uid 10001 --gid apipod --home-dir /data --shell /usr/sbin/nologin apipod \
    && mkdir -p /data \
    && chown apipod:apipod /data
# The SQLite database and the key files generated beside it (apipod.db.admin-secret, apipod.db.secret-key) live
# here; the working directory is the volume too, so anything apipod keeps in its working directory persists.
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 8081
# Liveness on the configured port; python, because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8081'), timeout=4)"]
# Exec form: apipod is PID 1 and receives docker stop's SIGTERM itself (graceful drain, usage flushed).
STOPSIGNAL SIGTERM
ENTRYPOINT ["apipod"]
CMD ["serve"]
