# next-sampler. Target `sampler` (default): the HTTP backends (tgi, openai) and replay, no torch,
# and the Kubernetes client (the tgi backend adds adapters to TGI's Deployment).
# Target `sampler-local`: adds the in-process transformers engine (torch, SmolLM2).
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY scripts/install.sh scripts/install.sh
COPY libs/common libs/common
COPY services/sampler services/sampler
ARG TARGET=sampler
RUN python -m venv /opt/venv && PIP=/opt/venv/bin/pip scripts/install.sh "$TARGET"

FROM python:3.11.11-slim-bookworm AS sampler
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --uid 10001 --no-create-home next
USER 10001
EXPOSE 50052
ENTRYPOINT ["next-sampler", "serve"]

FROM build AS build-local
RUN PIP=/opt/venv/bin/pip scripts/install.sh sampler-local

FROM python:3.11.11-slim-bookworm AS sampler-local
COPY --from=build-local /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 NEXT_CACHE_DIR=/cache
RUN useradd --uid 10001 --no-create-home next
USER 10001
EXPOSE 50052
ENTRYPOINT ["next-sampler", "serve"]
