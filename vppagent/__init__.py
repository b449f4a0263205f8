"""vppagent: hands a Kubernetes node's networking to a VPP data plane."""
