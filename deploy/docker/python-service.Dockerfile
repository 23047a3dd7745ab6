# syntax=docker/dockerfile:1
#
# One image recipe for every Python service of the chat backend.
#
#   docker build -f deploy/docker/python-service.Dockerfile --build-arg SERVICE=auth    -t chat/auth:dev .
#   docker build -f deploy/docker/python-service.Dockerfile --build-arg SERVICE=message -t chat/message:dev .
#   docker build -f deploy/docker/python-service.Dockerfile --build-arg SERVICE=gateway -t chat/gateway:dev .
#
# The build context is the repository root: a service needs libs/ and
# requirements.lock besides its own folder. Only those paths are copied, so
# nothing else in the tree (.dev/ keys, .venv, node_modules) reaches an image.
#
# Stages:
#   web      Node: fetches socket.io-client for the gateway's web client with
#            deploy/scripts/build-web.sh (the same script developers run);
#            an empty folder for the other services.
#   build    installs the service, its two libs and their pinned third-party
#            dependencies into /opt/venv. libs/testkit and dev tools never go in.
#   runtime  python:3.11-slim + that venv, running as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- web: the gateway's browser library, pinned by its package-lock.json ---
FROM ${NODE_IMAGE} AS web
ARG SERVICE
WORKDIR /build
COPY deploy/scripts/build-web.sh deploy/scripts/build-web.sh
COPY services/gateway/npm/package.json services/gateway/npm/package-lock.json services/gateway/npm/
RUN if [ "$SERVICE" = gateway ]; then bash deploy/scripts/build-web.sh; fi \
 && mkdir -p services/gateway/src/chat_gateway/static/vendor

# --- build: a virtualenv holding exactly what the service runs ---
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN case "$SERVICE" in auth|message|gateway) ;; \
      *) echo "pass --build-arg SERVICE=auth|message|gateway (got '$SERVICE')" >&2; exit 1 ;; esac
# PIP_CONSTRAINT (rather than `-c` on the command line) also reaches pip's
# isolated build environments, so the build backend (hatchling) is pinned too.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/requirements.lock
WORKDIR /src
COPY requirements.lock ./
COPY libs/contracts libs/contracts
COPY libs/platform libs/platform
COPY services/${SERVICE} services/${SERVICE}
# The vendor folder is git-ignored build output: take the copy fetched above,
# never whatever a developer's checkout happens to hold.
COPY --from=web /build/services/gateway/src/chat_gateway/static/vendor/ /tmp/web-vendor/
RUN if [ "$SERVICE" = gateway ]; then \
      rm -rf services/gateway/src/chat_gateway/static/vendor \
      && cp -r /tmp/web-vendor services/gateway/src/chat_gateway/static/vendor \
      && test -s services/gateway/src/chat_gateway/static/vendor/socket.io.min.js; \
    fi
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install ./libs/contracts ./libs/platform "./services/${SERVICE}" \
 && /opt/venv/bin/pip uninstall --yes pip \
 && ln -s "chat-${SERVICE}" /opt/venv/bin/chat-service \
 && /opt/venv/bin/chat-service --help >/dev/null

# --- runtime ---
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="chat-${SERVICE}" \
      org.opencontainers.image.description="Chat backend: ${SERVICE} service"
# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can verify it and
# mounted secrets can be made readable to it (fsGroup 10001).
RUN groupadd --system --gid 10001 chat \
 && useradd --system --uid 10001 --gid chat --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin chat
COPY --from=build /opt/venv /opt/venv
# Images fail closed: CHAT_ENV=prod refuses dev defaults (the AMQP guest
# account, a missing JWT key). Compose and the dev overlay say otherwise.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHAT_ENV=prod \
    CHAT_SERVICE=${SERVICE}
WORKDIR /app
USER 10001:10001
# Exec form: the service is PID 1 and receives SIGTERM itself, which starts
# its drain (gateway) or consumer shutdown. Ports default to the contract's
# (auth 8001, message 8002, gateway 8100); `--port N` overrides.
ENTRYPOINT ["chat-service"]
CMD ["--host", "0.0.0.0"]
