# k8s-gateway container image for linux/amd64 and linux/arm64 (Raspberry Pi 4/5 and other
# 64-bit ARM boards): build with Cargo, run on distroless as non-root.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example/k8s-gateway:0.1.0 .
#
# The build stage runs on the builder's own platform ($BUILDPLATFORM) and cross-compiles
# for each target platform with Debian's cross toolchain: no emulation, so the arm64 image
# builds at native speed on an amd64 machine. The platforms are the arms of the `case`
# below; chart/tests/test_image.py checks that the workflows and the docs list the same.
#
# Both base images are pinned by digest (the tag is kept for people to read): bump a tag and
# its digest together. The Rust toolchain is the one CI builds with; the crate's own floor
# is rust-version in Cargo.toml.
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
ARG TARGETARCH
ARG BUILDARCH
# The commit, for coredns_build_info's `revision` label (the release workflow passes it).
ARG K8S_GATEWAY_REVISION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The whole crate (.dockerignore keeps target/, .git/, chart/ and docs/ out): Cargo.toml
# names its bench targets by path, and tests/ and benches/ are cheap, so copying less than
# everything would only make the build break the day a target is added.
COPY . .
# The Rust target, the GNU triplet of its C toolchain (ring compiles C and assembly) and
# Debian's name for the architecture. A cross toolchain is installed only when the target
# differs from the builder: bookworm's own gcc already builds for its native architecture.
# hadolint ignore=DL3008
RUN case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu; gnu=x86_64-linux-gnu; deb=amd64 ;; \
      arm64) target=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu; deb=arm64 ;; \
      *) echo "k8s-gateway images are built for amd64 and arm64, not $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends "gcc-${gnu//_/-}" "libc6-dev-${deb}-cross" \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && rustup target add "$target" \
 && env_target="${target//-/_}" \
 && export "CC_${env_target}=${gnu}-gcc" "CARGO_TARGET_${env_target^^}_LINKER=${gnu}-gcc" \
 && cargo build --release --locked --target "$target" \
 && install -D -m 0755 "target/$target/release/k8s-gateway" /out/k8s-gateway

# Stage 2, on the target platform: distroless "cc" has glibc and libgcc (what a Rust binary
# links to) and nothing else: no shell, no package manager. TLS to the API server is rustls
# (no OpenSSL), trusting the cluster CA that comes with the ServiceAccount token. The
# :nonroot tag runs as uid/gid 65532, which the chart's podSecurityContext also sets.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /out/k8s-gateway /usr/local/bin/k8s-gateway
USER 65532:65532
# DNS on an unprivileged port (no CAP_NET_BIND_SERVICE; the Service maps 53 to it), and
# HTTP for /metrics, /healthz and /readyz (the debug views stay on loopback, 127.0.0.1:8081).
EXPOSE 1053/udp 1053/tcp 8080/tcp
# No HEALTHCHECK: there is no shell or curl here; Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["/usr/local/bin/k8s-gateway"]
CMD ["serve"]
