# syntax=docker/dockerfile:1

# Build stage: the release binary, with the versions pinned in Cargo.lock.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin masakari-hostmonitor \
    && install -D -m 0755 target/release/masakari-hostmonitor /out/masakari-hostmonitor

# Runtime stage: glibc, libgcc and CA certificates only, no shell, user nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/masakari-hostmonitor /usr/local/bin/masakari-hostmonitor
USER 65532:65532
# Admin server: /healthz, /readyz and /metrics.
EXPOSE 9797
ENTRYPOINT ["/usr/local/bin/masakari-hostmonitor"]
