# syntax=docker/dockerfile:1
# One image for both in-cluster roles: `manager` (the default) and `tokenserver`, which the
# operator deploys from its own image so the two never drift apart.

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w" -o /out/lpauth-operator .

# distroless: no shell, no package manager; runs as the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lpauth-operator /lpauth-operator
USER 65532:65532
ENTRYPOINT ["/lpauth-operator"]
CMD ["manager"]
