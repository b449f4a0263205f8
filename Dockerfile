# syntax=docker/dockerfile:1
# vppagent image: VPP 26.06 from FD.io's packages, our VPP plugins built against vpp-dev,
# the agent and the CNI plugin in a venv. One image, three entry points (see deploy/daemonset.yaml):
#   vpp container:  /opt/vppagent/bin/python -m startup ... run   (brings VPP up, supervises it)
#   agent:          /opt/vppagent/bin/vppagent run
#   CNI installer:  /opt/vppagent/bin/vppagent-cni install ...     (init container)
#
# VPP_VERSION must match the API definitions the agent was built for (vppagent/vpp/crcs.py, v26.06):
# the agent refuses a VPP whose message CRCs differ, so the pin is enforced at run time too.
ARG UBUNTU=ubuntu:24.04
ARG VPP_VERSION=26.06-release
ARG FDIO_REPO=release

# ---- build: plugins against vpp-dev, the Python venv ------------------------------------------
FROM ${UBUNTU} AS build
ARG VPP_VERSION
ARG FDIO_REPO
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
      cmake ninja-build gcc g++ libc6-dev pkg-config python3 python3-venv python3-dev \
 && curl -fsSL "https://packagecloud.io/fdio/${FDIO_REPO}/gpgkey" | gpg --dearmor -o /usr/share/keyrings/fdio.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/fdio.gpg] https://packagecloud.io/fdio/${FDIO_REPO}/ubuntu noble main" \
      > /etc/apt/sources.list.d/fdio.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      vpp=${VPP_VERSION} vpp-dev=${VPP_VERSION} libvppinfra=${VPP_VERSION} libvppinfra-dev=${VPP_VERSION} \
 && rm -rf /var/lib/apt/lists/*

# Our graph-node plugins, out of tree (find_package(VPP) from vpp-dev).
COPY vpp_plugins/ /src/vpp_plugins/
RUN cmake -S /src/vpp_plugins -B /build/plugins -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX=/opt/plugins \
 && cmake --build /build/plugins \
 && cmake --install /build/plugins

# The agent, the CNI plugin and node bring-up, in a venv (same base image, same python3 at run time).
COPY pyproject.toml README.md /src/agent/
COPY vppagent/ /src/agent/vppagent/
COPY startup/ /src/agent/startup/
COPY ipsec/ /src/agent/ipsec/
RUN python3 -m venv /opt/vppagent \
 && /opt/vppagent/bin/pip install --no-cache-dir --no-compile /src/agent \
 && find /opt/vppagent -name '__pycache__' -prune -exec rm -rf {} +

# ---- runtime: VPP, plugins, venv; no compilers, no headers --------------------------------------
FROM ${UBUNTU} AS runtime
ARG VPP_VERSION
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /usr/share/keyrings/fdio.gpg /usr/share/keyrings/fdio.gpg
COPY --from=build /etc/apt/sources.list.d/fdio.list /etc/apt/sources.list.d/fdio.list
# ca-certificates only for apt over https; iproute2 and ethtool for uplink takeover and debugging;
# vpp-plugin-dpdk for ENA (AWS) and bare-metal NICs bound to vfio-pci (af_xdp is in plugin-core).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 iproute2 ethtool \
      vpp=${VPP_VERSION} vpp-plugin-core=${VPP_VERSION} vpp-plugin-dpdk=${VPP_VERSION} libvppinfra=${VPP_VERSION} \
 && apt-mark hold vpp vpp-plugin-core vpp-plugin-dpdk libvppinfra \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY --from=build /opt/plugins/lib/vpp_plugins/ /usr/lib/x86_64-linux-gnu/vpp_plugins/
COPY --from=build /opt/vppagent /opt/vppagent
ENV PATH=/opt/vppagent/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    VPPAGENT_API_DIR=/usr/share/vpp/api
LABEL org.opencontainers.image.title="vppagent" \
      io.fd.vpp.version="${VPP_VERSION}"
ENTRYPOINT ["/opt/vppagent/bin/vppagent"]
CMD ["run"]
