"""Operations: the agent's local status socket, its Prometheus metrics, and the views both read.

Owns: ``views`` (JSON-ready snapshots of a running agent), ``status_server``
(the unix-socket HTTP server the operator CLI reads) and ``metrics`` (agent
and VPP stats-segment collectors). Nothing here writes to VPP or Kubernetes.
"""
