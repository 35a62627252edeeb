# syntax=docker/dockerfile:1
# The ipvsctl node agent image: `ipvsctl` as entrypoint, ipvsadm (the
# independent witness for `ipvsctl show`) and kmod (modprobe, for
# loadKernelModules) beside it.
#
#   docker build -t <your-registry>/ipvsctl:<version> .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_ADMIN \
#       <your-registry>/ipvsctl:<version> show
#
# It runs as root on purpose. Everything ipvsctl does needs CAP_NET_ADMIN in
# the process's effective set, and a non-root process only gets that through
# ambient capabilities, which neither Kubernetes nor `docker run` sets (nor can
# file capabilities help: the chart sets no_new_privs, which ignores them).
# The chart confines that root instead: every capability but NET_ADMIN
# dropped, no privilege escalation, read-only root filesystem, seccomp.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

# Build stage: the package and its dependencies in a virtualenv, so the runtime
# stage gets no pip cache, no build backend and no source tree.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/ipvsctl
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ipvsctl ./ipvsctl
RUN /opt/ipvsctl/bin/pip install . \
    && /opt/ipvsctl/bin/ipvsctl --help >/dev/null

FROM ${PYTHON_IMAGE}
# Debian's own versions: pinning them would break the build at every point
# release, and the base image tag already fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ipvsadm kmod nftables \
    && rm -rf /var/lib/apt/lists/*
# Same base image in both stages, so the virtualenv's interpreter path holds.
COPY --from=build /opt/ipvsctl /opt/ipvsctl
# No .pyc writes at run time: the chart mounts the root filesystem read-only
# (pip compiled the bytecode at install time).
ENV PATH=/opt/ipvsctl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Root, confined by capabilities: see the top of this file.
# hadolint ignore=DL3002
USER 0:0
ENTRYPOINT ["ipvsctl"]
CMD ["--help"]
