# synbatch's container image: the static binary, CA certificates and a
# non-root user, on nothing else. docs/kubernetes.md runs it as an Indexed
# Job.
#
# Build it with `make image`: that builds the static binary (CGO_ENABLED=0,
# -trimpath) and lays out its context in dist/image/ (the binary, this
# machine's CA bundle, packaging/image/passwd and group), then runs
# buildah bud on it. By hand, with that context in place:
#   docker build -f Dockerfile dist/image
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd group /etc/
COPY --chown=65532:65532 work /work
COPY synbatch /synbatch
USER 65532:65532
WORKDIR /work
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Config and run locks live under $HOME (.config, .cache): the /work volume.
ENV HOME=/work
ENTRYPOINT ["/synbatch"]
CMD ["--help"]
