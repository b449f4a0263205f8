"""Kubernetes NetworkPolicy: the IR, the compiler and incremental ipsets.

Owns: turning NetworkPolicy/Pod/Namespace model objects into per-pod rule
lists over named ipsets, and keeping those sets' membership current as pods
and namespaces change. Modules:

- ``ir``: the value types every evaluator shares (sets, rules, PodPolicy,
  Packet, Verdict) and their normative semantics;
- ``ipsets``: set naming and incremental membership (``IpSetIndex``);
- ``compiler``: ``PolicyCompiler`` (inputs in, ``PolicyDelta`` out);
- ``reference``: the reference evaluator and data-plane model (tests, emulator).

Nothing is imported here, so that ``ir`` and ``reference`` stay importable
without the agent's other packages. Must not touch: VPP (the vpp layer does).
"""
