"""What the tests and benchmarks stand on; never shipped (not in the wheel, not in the image).

Owns the test doubles and the harnesses that more than one suite or benchmark uses:

| module | what |
|---|---|
| ``emulator/`` | the VPP API emulator: VPP's binary API on a unix socket, a test double (no packets flow) |
| ``policy_reference`` | the reference model of the kpol data plane (the emulator's kpol family, the policy vectors) |
| ``fakekube/`` | the fake Kubernetes API server (real HTTP list/watch, used through the real client) |
| ``targets`` | one way to get a VPP API: the emulator, a private real VPP (plugins, workers), an external socket |
| ``plugins`` | our VPP plugins built out of tree against the VPP under test, once per machine and source |
| ``agent_runner`` | one agent running its loop in a thread, with the settings tests shrink |
| ``podnet`` | an agent serving pods over its CNI gRPC socket, and netns standing in for pod sandboxes |
| ``netpods`` | netns pods attached to a VPP by hand (veth + af_packet), for the demo and the data-path tiers |
| ``realnet`` | two real VPPs on a veth underlay with a pod behind each |
| ``fake_cni_agent`` | a stand-in for the agent's CNI backend, for the CNI plugin's own tests |
| ``wait`` | polling until a condition holds |
| ``demo`` | ``make demo`` |

Must not be imported by the product (``vppagent/``, ``startup/``, ``ipsec/``): the
dependency runs one way, from here to the product.
"""
