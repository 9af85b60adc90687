# aiswatch: the daemon, the setup one-shots and the detection scheduler all run this image.
# Build: docker build -t aiswatch .   (docker compose builds it for you)
#
# Two stages. "build" has the sources and gcc: it builds aiswatch's wheel (pip compiles the ingest
# hot path with mypyc, setup.py) and the wheels it depends on, and installs them into a virtualenv.
# The image starts again from the slim base and copies only that virtualenv: no sources, no
# compiler and no wheel files in any of its layers.
FROM python:3.11.10-slim-bookworm AS build

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
RUN pip wheel --no-cache-dir --wheel-dir /wheels /src \
    && python -m venv --without-pip /opt/aiswatch \
    && pip --python /opt/aiswatch/bin/python install --no-cache-dir --no-index --find-links /wheels aiswatch


FROM python:3.11.10-slim-bookworm

# librtlsdr0: for users who plug an RTL-SDR into the container (aiswatch demod / sdr sources);
# curl: healthchecks and debugging.
RUN apt-get update \
    && apt-get install -y --no-install-recommends librtlsdr0 curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 aiswatch \
    && mkdir -p /data /etc/aiswatch \
    && chown aiswatch:aiswatch /data

COPY --from=build /opt/aiswatch /opt/aiswatch
ENV PATH=/opt/aiswatch/bin:$PATH
# the image must run the compiled ingest modules: a build whose mypyc step failed falls back to the
# Python sources (a third slower), which is fine on a laptop but not in the image
RUN python -c "import aiswatch.ingest.native as n, sys; print('ingest modules:', n.mode()); sys.exit(n.mode() != 'compiled')"
COPY docker/aiswatch.yaml /etc/aiswatch/aiswatch.yaml

USER aiswatch
WORKDIR /data
# spool, dead letters, status file and the embedded server's data live under AISWATCH_HOME
ENV AISWATCH_HOME=/data \
    AISWATCH_CONFIG=/etc/aiswatch/aiswatch.yaml \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 10110/udp

ENTRYPOINT ["aiswatch"]
CMD ["run"]
