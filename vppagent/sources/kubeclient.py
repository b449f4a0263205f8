"""Building the ``kubernetes`` ApiClient the sources and the EventRecorder use.

Owns: where the client configuration comes from (an explicit host, a
kubeconfig file, or the pod's service account) and the transport settings
that matter to us. Must not touch: the process-wide default Configuration
of the ``kubernetes`` package (every client built here is self-contained).
"""
from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from .errors import KubeConfigError

# urllib3 retries each request on its own by default (3 immediate retries).
# One retry absorbs a stale keep-alive connection; anything beyond that is
# the sources' job, with backoff and jitter, so that a dead API server sees
# a slowing trickle of requests rather than bursts of four.
DEFAULT_RETRIES = 1


def _finish(cfg: client.Configuration, retries: int) -> client.ApiClient:
    cfg.retries = retries
    api = client.ApiClient(configuration=cfg)
    api.user_agent = "vppagent"
    return api


def api_client_for_host(host: str, *, token: str | None = None, retries: int = DEFAULT_RETRIES
                        ) -> client.ApiClient:
    """A client for an explicit API server URL (tests: ``http://127.0.0.1:PORT``)."""
    cfg = client.Configuration()
    cfg.host = host
    if token:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    return _finish(cfg, retries)


def load_api_client(kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None,
                    retries: int = DEFAULT_RETRIES) -> client.ApiClient:
    """A client from ``kubeconfig`` if given, else in-cluster config, else ``$KUBECONFIG``/~/.kube/config.

    Raises KubeConfigError naming the source that failed.
    """
    cfg = client.Configuration()
    if kubeconfig is not None:
        where = f"kubeconfig {os.fspath(kubeconfig)}"
        if not Path(kubeconfig).is_file():
            raise KubeConfigError(where, "no such file")
        try:
            config.load_kube_config(config_file=os.fspath(kubeconfig), context=context,
                                    client_configuration=cfg, persist_config=False)
        except (ConfigException, OSError, ValueError) as exc:
            raise KubeConfigError(where, str(exc)) from exc
        return _finish(cfg, retries)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=cfg)
        except (ConfigException, OSError) as exc:
            raise KubeConfigError("the in-cluster service account", str(exc)) from exc
        return _finish(cfg, retries)
    try:
        config.load_kube_config(context=context, client_configuration=cfg, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError("$KUBECONFIG or ~/.kube/config (not in a cluster)", str(exc)) from exc
    return _finish(cfg, retries)
