# next-controller: runs rounds against the services (remote mode); no torch.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY scripts/install.sh scripts/install.sh
COPY libs/common libs/common
COPY libs/tasks libs/tasks
COPY services/controller services/controller
RUN python -m venv /opt/venv && PIP=/opt/venv/bin/pip scripts/install.sh controller

FROM python:3.11.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 NEXT_CACHE_DIR=/cache
RUN useradd --uid 10001 --no-create-home next
USER 10001
EXPOSE 50054
ENTRYPOINT ["next"]
CMD ["serve"]
