"""Network policy on stock VPP, the VPP side: the ACL plugin's reconciler kinds.

Owns ``policy-acl`` (one ACL, by tag: the rules ``acl_fallback`` expanded for
one pod and direction) and ``policy-acl-binding`` (a pod interface's
input/output ACL lists), their values and descriptors. An ACL changes in
place (``acl_add_replace``), so the interfaces bound to it see the new rules
at once.

Ownership: ACLs whose tag starts with ``vppagent:pol:``; bindings that list
at least one of them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vppagent.kinds import VppKind
from vppagent.reconcile import Found, Key, Resolver
from vppagent.vpp import acl
from vppagent.vpp.acl import Rule as AclRule
from vppagent.vpp.client import VppClient
from vppagent.vpp.errors import VppApiError
from vppagent.vpp.retvals import Retval

ACL_KIND = "policy-acl"
BINDING_KIND = "policy-acl-binding"
INTERFACE_KIND = "pod-interface"
TAG_PREFIX = "vppagent:pol:"


def acl_tag(pod: str, direction: str) -> str:
    """``vppagent:pol:<hash of the pod key>:<in|out>``: fits VPP's 63-byte tag."""
    return f"{TAG_PREFIX}{hashlib.sha256(pod.encode()).hexdigest()[:32]}:{direction}"


@dataclass(frozen=True)
class PolicyAcl:
    tag: str
    rules: tuple[AclRule, ...]

    @property
    def key(self) -> Key:
        return Key(ACL_KIND, self.tag)


@dataclass(frozen=True)
class AclBinding:
    interface: Key
    input: tuple[Key, ...]
    output: tuple[Key, ...]

    @property
    def key(self) -> Key:
        return Key(BINDING_KIND, self.interface.id)


class PolicyAclDescriptor(VppKind):
    kind = ACL_KIND

    def key(self, value: PolicyAcl) -> str:
        return value.tag

    def create(self, vpp: VppClient, value: PolicyAcl, resolver: Resolver) -> int:
        return acl.add_acl(vpp, value.rules, value.tag)

    def can_update(self, old: PolicyAcl, new: PolicyAcl) -> bool:
        return True

    def update(self, vpp: VppClient, old: PolicyAcl, handle: int, new: PolicyAcl, resolver: Resolver) -> int:
        acl.replace_acl(vpp, handle, new.rules, new.tag)  # in place: bound interfaces see it at once
        return handle

    def delete(self, vpp: VppClient, value: PolicyAcl, handle: int, resolver: Resolver) -> None:
        try:
            acl.delete_acl(vpp, handle)
        except VppApiError as e:
            if e.retval != Retval.NO_SUCH_ENTRY:
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[PolicyAcl]]:
        return [Found(PolicyAcl(a.tag, a.rules), a.index) for a in acl.dump_acls(vpp)
                if a.tag.startswith(TAG_PREFIX)]


class AclBindingDescriptor(VppKind):
    kind = BINDING_KIND
    retrieve_after: tuple[str, ...] = (ACL_KIND, INTERFACE_KIND)

    def key(self, value: AclBinding) -> Any:
        return value.interface.id

    def dependencies(self, value: AclBinding) -> Iterable[Key]:
        return [value.interface, *value.input, *value.output]

    def create(self, vpp: VppClient, value: AclBinding, resolver: Resolver) -> int:
        sw = resolver.handle(value.interface)
        acl.set_interface_acls(vpp, sw, [resolver.handle(k) for k in value.input],
                               [resolver.handle(k) for k in value.output])
        return sw

    def can_update(self, old: AclBinding, new: AclBinding) -> bool:
        return old.interface == new.interface

    def update(self, vpp: VppClient, old: AclBinding, handle: int, new: AclBinding, resolver: Resolver) -> int:
        return self.create(vpp, new, resolver)

    def delete(self, vpp: VppClient, value: AclBinding, handle: int, resolver: Resolver) -> None:
        try:
            acl.clear_interface_acls(vpp, handle)
        except VppApiError as e:
            if e.retval not in (Retval.INVALID_SW_IF_INDEX, Retval.NO_SUCH_ENTRY):
                raise

    def retrieve(self, vpp: VppClient, resolver: Resolver) -> Iterable[Found[AclBinding]]:
        out = []
        for b in acl.interface_acls(vpp):
            keys_in = [resolver.key_of(ACL_KIND, i) for i in b.input]
            keys_out = [resolver.key_of(ACL_KIND, i) for i in b.output]
            ours = [k for k in keys_in + keys_out if k is not None]
            if not ours:
                continue  # no policy ACL here: not ours
            iface = resolver.key_of(INTERFACE_KIND, b.sw_if_index) or Key(INTERFACE_KIND, f"#orphan-sw-{b.sw_if_index}")
            # an ACL not ours in the list reads back as an unknown key: never equal, so it is rewritten
            fill = Key(ACL_KIND, "#foreign")
            out.append(Found(AclBinding(iface, tuple(k or fill for k in keys_in), tuple(k or fill for k in keys_out)),
                             b.sw_if_index))
        return out


__all__ = ["ACL_KIND", "AclBinding", "AclBindingDescriptor", "BINDING_KIND", "PolicyAcl", "PolicyAclDescriptor",
           "TAG_PREFIX", "acl_tag"]
