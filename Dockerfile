# syntax=docker/dockerfile:1
# One image for both in-cluster roles: `manager` (the default) and `tokenserver`, which the
# operator deploys from its own image so the two never drift apart.

FROM golang:1.26-bookworm AS build
# libcrypto for the RS256 signer (-tags openssl): several times faster than crypto/rsa, and the
# signature is the one irreducible cost of a token.
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=1
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# cgo builds for the platform this stage runs on: for another architecture, let buildx run the
# stage under emulation (the default without --platform on FROM).
ARG TARGETOS=linux TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -tags openssl -ldflags="-s -w" -o /out/lpauth-operator .

# distroless base: glibc and libssl3 for the signer, no shell, no package manager; runs as the
# nonroot user (65532).
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/lpauth-operator /lpauth-operator
USER 65532:65532
ENTRYPOINT ["/lpauth-operator"]
CMD ["manager"]
