# The manager image: a static binary on distroless, running as a non-root user.
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/shopstack/shopstack-operator:0.1.0 .
# (`make docker-build` passes the Makefile's VERSION.)

FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
# The default image tag of the services a Shop runs when spec.version is unset.
ARG VERSION=0.1.0

WORKDIR /workspace
# Dependencies first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY config/crd/ config/crd/

RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o manager ./cmd

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
# Numeric, so that the kubelet can enforce runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/manager"]
