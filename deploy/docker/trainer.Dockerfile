# next-trainer: torch==2.13.0 from PyPI is the CUDA build on Linux x86-64 (its CUDA libraries
# come as nvidia-* wheels; the node provides the driver through the NVIDIA container toolkit).
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY scripts/install.sh scripts/install.sh
COPY libs/common libs/common
COPY services/trainer services/trainer
RUN python -m venv /opt/venv && PIP=/opt/venv/bin/pip scripts/install.sh trainer

FROM python:3.11.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 NEXT_CACHE_DIR=/cache
RUN useradd --uid 10001 --no-create-home next
USER 10001
EXPOSE 50053
ENTRYPOINT ["next-trainer", "serve"]
