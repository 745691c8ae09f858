# k8s-gateway container image: build with Cargo, run on distroless as non-root.
#
#   docker build -t registry.example/k8s-gateway:0.1.0 .
#
# Stage 1 builds on the official Rust image for Debian 12 (bookworm), so the binary links
# against the same glibc as the runtime stage below. The toolchain version follows the one
# CI builds with; the crate's own floor is rust-version in Cargo.toml.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole crate (.dockerignore keeps target/, .git/, chart/ and docs/ out): Cargo.toml
# names its bench targets by path, and tests/ and benches/ are cheap, so copying less than
# everything would only make the build break the day a target is added.
COPY . .
# Exactly the command CI runs: --locked builds what Cargo.lock pins, or fails.
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/k8s-gateway /out/k8s-gateway

# Stage 2: distroless "cc" has glibc and libgcc (what a Rust binary links to) and nothing
# else: no shell, no package manager. TLS to the API server is rustls (no OpenSSL), trusting
# the cluster CA that comes with the ServiceAccount token. The :nonroot tag runs as
# uid/gid 65532, which the chart's podSecurityContext also sets.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/k8s-gateway /usr/local/bin/k8s-gateway
USER 65532:65532
# DNS on an unprivileged port (no CAP_NET_BIND_SERVICE; the Service maps 53 to it), and
# HTTP for /metrics, /healthz and /readyz (the debug views stay on loopback, 127.0.0.1:8081).
EXPOSE 1053/udp 1053/tcp 8080/tcp
# No HEALTHCHECK: there is no shell or curl here; Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["/usr/local/bin/k8s-gateway"]
CMD ["serve"]
