"""Pod networking: the CNI backend, pod interface drivers and IPAM."""
