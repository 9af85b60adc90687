# aiswatch: the daemon, the setup one-shot and the detection scheduler all run this image.
# Build: docker build -t aiswatch .   (docker compose builds it for you)
FROM python:3.11.10-slim-bookworm

# librtlsdr0: for users who plug an RTL-SDR into the container (aiswatch demod / sdr sources);
# curl: healthchecks and debugging.
RUN apt-get update \
    && apt-get install -y --no-install-recommends librtlsdr0 curl \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 aiswatch \
    && mkdir -p /data /etc/aiswatch \
    && chown aiswatch:aiswatch /data

WORKDIR /src
COPY . /src
# gcc only while pip compiles the ingest hot path with mypyc (setup.py), then removed again
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir /src \
    && cd / && python -c "import aiswatch.ingest.native as n, sys; print('ingest modules:', n.mode()); sys.exit(n.mode() != 'compiled')" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* /src
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
