# syntax=docker/dockerfile:1
# Multi-stage build: compile s3d with the locked dependency set, then run it as a non-root
# user in a slim image with a data volume and a health check.

FROM rust:1-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY config ./config
RUN cargo build --locked --release --bin s3d

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/s3d --create-home s3d
COPY --from=build /src/target/release/s3d /usr/local/bin/s3d
COPY config/default.toml /etc/s3d/s3d.toml
USER s3d
WORKDIR /var/lib/s3d
VOLUME ["/var/lib/s3d"]
ENV S3D_CONFIG=/etc/s3d/s3d.toml \
    S3D_LISTEN=0.0.0.0:9000 \
    S3D_DATA_DIR=/var/lib/s3d
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9000/-/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/s3d"]
