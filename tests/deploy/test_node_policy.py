"""deploy/node-annotations-policy.yaml: the ValidatingAdmissionPolicy that limits what the vppagent
service account may change on Nodes, evaluated with a real CEL implementation (cel-python) on
admission requests shaped as the API server builds them.

Kubernetes evaluates the policy as this module does: matchConstraints, then every matchCondition
(all true, or the policy does not apply), then each variable, then each validation (all true, or
the request is denied with that validation's message). The expressions avoid constructs that
cel-python and Kubernetes' cel-go do not both accept (optional types, two-variable
comprehensions), and guard every possibly-missing field with has().
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy import celtypes

from ipsec.keys import IPSEC_PUBLIC_KEY, WIREGUARD_PUBLIC_KEY
from ipsec.rekey import IPSEC_KEY_EPOCH

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
POLICY_FILE = DEPLOY / "node-annotations-policy.yaml"
NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def agent_username() -> str:
    """The agent's identity, from deploy/rbac.yaml's ServiceAccount."""
    sa = _one(_docs(DEPLOY / "rbac.yaml"), "ServiceAccount")
    return f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}"


def expressions(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    out = [m["expression"] for m in spec.get("matchConditions", [])]
    out += [v["expression"] for v in spec.get("variables", [])]
    for v in spec.get("validations", []):
        out.append(v["expression"])
        if "messageExpression" in v:
            out.append(v["messageExpression"])
    return out


@dataclass(frozen=True)
class Decision:
    matched: bool  # the policy applies to this request
    allowed: bool
    message: str = ""


class Policy:
    """A ValidatingAdmissionPolicy compiled with cel-python, evaluated the way the API server does."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.env = celpy.Environment()
        spec = doc["spec"]
        self.match_conditions = [(m["name"], self._compile(m["expression"])) for m in spec.get("matchConditions", [])]
        self.variables = [(v["name"], self._compile(v["expression"])) for v in spec.get("variables", [])]
        self.validations = [
            (self._compile(v["expression"]),
             self._compile(v["messageExpression"]) if "messageExpression" in v else None,
             v.get("message", ""))
            for v in spec["validations"]]

    def _compile(self, expr: str) -> Any:
        return self.env.program(self.env.compile(expr))

    def _matches_constraints(self, request: dict[str, Any]) -> bool:
        res = request["resource"]
        for rule in self.doc["spec"]["matchConstraints"]["resourceRules"]:
            resources = {r.split("/", 1)[0]: r for r in rule["resources"]}
            want = res["resource"] + ("/" + request["subResource"] if request.get("subResource") else "")
            if (request["operation"] in rule["operations"] and res["group"] in rule["apiGroups"]
                    and res["version"] in rule["apiVersions"] and want in resources.values()):
                return True
        return False

    @staticmethod
    def _eval(program: Any, activation: dict[str, Any]) -> Any:
        result = program.evaluate(activation)
        # An evaluation error is a denial under failurePolicy Fail, but none of the requests here
        # should cause one: the expressions guard what may be missing. Fail loudly instead.
        assert not isinstance(result, celpy.CELEvalError), result
        return result

    def admit(self, request: dict[str, Any]) -> Decision:
        if not self._matches_constraints(request):
            return Decision(matched=False, allowed=True)
        activation: dict[str, Any] = {
            "request": celpy.json_to_cel(request),
            "object": celpy.json_to_cel(request["object"]),
            "oldObject": celpy.json_to_cel(request["oldObject"]),
        }
        for _, cond in self.match_conditions:
            if not self._eval(cond, activation):
                return Decision(matched=False, allowed=True)
        variables: dict[celtypes.StringType, Any] = {}
        for name, prog in self.variables:
            scope = {**activation, "variables": celtypes.MapType(variables)}  # the variables before it
            variables[celtypes.StringType(name)] = self._eval(prog, scope)
        activation["variables"] = celtypes.MapType(variables)
        for check, message_expr, message in self.validations:
            ok = self._eval(check, activation)
            assert isinstance(ok, celtypes.BoolType), f"a validation returned {ok!r}"
            if not ok:
                text = str(self._eval(message_expr, activation)) if message_expr is not None else message
                return Decision(matched=True, allowed=False, message=text)
        return Decision(matched=True, allowed=True)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return _docs(POLICY_FILE)


@pytest.fixture(scope="module")
def policy(docs) -> Policy:
    return Policy(_one(docs, "ValidatingAdmissionPolicy"))


# -- requests ---------------------------------------------------------------------------------

def node(name: str = "node-a") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "uid": "6f1c0d4e-0000-4000-8000-00000000000a", "resourceVersion": "1200",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "node-role.kubernetes.io/worker": ""},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                            "vppagent.io/encryption": "wireguard",
                            WIREGUARD_PUBLIC_KEY: "b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleT0="},
            "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1"}],
        },
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "providerID": "aws:///i-0a",
                 "taints": [{"key": "dedicated", "value": "net", "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what the agent's ``patch_node`` of a dict sends)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def update(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The object admission sees: the patched old object, with the server's bookkeeping updated."""
    new = merge_patch(old, patch)
    new["metadata"]["managedFields"] = [*old["metadata"].get("managedFields", []),
                                        {"manager": "vppagent", "operation": "Update", "apiVersion": "v1"}]
    return new


def request(old: dict[str, Any], new: dict[str, Any], *, username: str | None = None,
            extra: dict[str, list[str]] | None = None, operation: str = "UPDATE",
            sub_resource: str = "") -> dict[str, Any]:
    user: dict[str, Any] = {"username": username or agent_username(),
                            "uid": "0d6d2c8e-0000-4000-8000-000000000001",
                            "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                       "system:authenticated"]}
    if extra is not None:
        user["extra"] = extra
    req = {"uid": "5a3e9f7c-0000-4000-8000-000000000002",
           "kind": {"group": "", "version": "v1", "kind": "Node"},
           "resource": {"group": "", "version": "v1", "resource": "nodes"},
           "name": new["metadata"]["name"], "operation": operation, "userInfo": user,
           "object": new, "oldObject": old, "dryRun": False}
    if sub_resource:
        req["subResource"] = sub_resource
    return req


def token_of(node_name: str) -> dict[str, list[str]]:
    """userInfo.extra of a bound service-account token of a pod on ``node_name`` (Kubernetes >= 1.30)."""
    return {"authentication.kubernetes.io/pod-name": ["vppagent-x7k2p"],
            "authentication.kubernetes.io/pod-uid": ["9b0f7f7e-0000-4000-8000-000000000003"],
            "authentication.kubernetes.io/credential-id": ["JTI=1f2e3d4c"],
            NODE_NAME_EXTRA: [node_name],
            "authentication.kubernetes.io/node-uid": ["6f1c0d4e-0000-4000-8000-00000000000a"]}


def agent_patch(**values: str | None) -> dict[str, Any]:
    return {"metadata": {"annotations": values}}


# What the agent publishes (vppagent/connectivity/feature.py annotations(), sent by annotator.py).
AGENT_PUBLISHES = agent_patch(**{IPSEC_PUBLIC_KEY: "aXBzZWMtcHVibGljLWtleQ==", IPSEC_KEY_EPOCH: "3",
                                 WIREGUARD_PUBLIC_KEY: "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleT0="})


def own(patch: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    old = old or node("node-a")
    return request(old, update(old, patch), extra=token_of("node-a"))


# -- the manifest --------------------------------------------------------------------------

def test_the_policy_and_its_binding(docs) -> None:
    pol = _one(docs, "ValidatingAdmissionPolicy")
    binding = _one(docs, "ValidatingAdmissionPolicyBinding")
    assert {d["apiVersion"] for d in docs} == {"admissionregistration.k8s.io/v1"}
    assert binding["spec"]["policyName"] == pol["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert "paramRef" not in binding["spec"] and "paramKind" not in pol["spec"]
    spec = pol["spec"]
    assert spec["failurePolicy"] == "Fail", "an evaluation error must refuse, not let the patch through"
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert rule == {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["nodes"]}
    # Every validation says why, to whoever reads the agent's log or the audit log.
    for v in spec["validations"]:
        assert v.get("message") or v.get("messageExpression")
        assert v.get("reason") == "Forbidden"


def test_the_expressions_are_cel_both_kubernetes_and_cel_python_accept(policy, docs) -> None:
    exprs = expressions(_one(docs, "ValidatingAdmissionPolicy"))
    assert len(exprs) >= 8
    for e in exprs:
        # optional types ([?k], .?f, optional.of) need Kubernetes' optional library and are not
        # in cel-python; two-variable comprehensions (all(k, v, ...), transformMap) need 1.33.
        assert "[?" not in e and ".?" not in e and "optional." not in e, e
        assert not re.search(r"\.(all|exists|exists_one|map|filter)\(\s*\w+\s*,\s*\w+\s*,", e), e
        assert "transformMap" not in e and "transformList" not in e, e
    # compiling them all is what the fixture did; every variable a validation reads is defined
    names = {v["name"] for v in _one(docs, "ValidatingAdmissionPolicy")["spec"]["variables"]}
    used = {m for e in exprs for m in re.findall(r"variables\.(\w+)", e)}
    assert used == names, (used, names)


def test_the_condition_names_the_agents_service_account(docs) -> None:
    (cond,) = _one(docs, "ValidatingAdmissionPolicy")["spec"]["matchConditions"]
    assert f"'{agent_username()}'" in cond["expression"]


# -- what the agent does: allowed ------------------------------------------------------------

def test_the_agent_publishing_its_own_keys_is_allowed(policy) -> None:
    d = policy.admit(own(AGENT_PUBLISHES))
    assert d.matched and d.allowed, d.message


@pytest.mark.parametrize("patch", [
    agent_patch(**{WIREGUARD_PUBLIC_KEY: "cm90YXRlZA=="}),          # rotated
    agent_patch(**{WIREGUARD_PUBLIC_KEY: None}),                     # removed
    agent_patch(**{"vppagent.io/encryption": "ipsec"}),              # any vppagent.io/ key
], ids=["change", "remove", "other-vppagent-key"])
def test_any_change_of_its_own_vppagent_annotations_is_allowed(policy, patch) -> None:
    d = policy.admit(own(patch))
    assert d.matched and d.allowed, d.message


def test_a_node_without_annotations_or_labels_yet(policy) -> None:
    bare = node("node-a")
    del bare["metadata"]["annotations"], bare["metadata"]["labels"]
    d = policy.admit(own(AGENT_PUBLISHES, old=bare))
    assert d.matched and d.allowed, d.message
    d = policy.admit(own(agent_patch(**{"example.com/x": "1"}), old=bare))
    assert d.matched and not d.allowed
    d = policy.admit(own({"metadata": {"labels": {"a": "b"}}}, old=bare))
    assert d.matched and not d.allowed
    # the last annotation removed: the map is gone from the new object
    only_ours = node("node-a")
    only_ours["metadata"]["annotations"] = {WIREGUARD_PUBLIC_KEY: "a2V5"}
    d = policy.admit(own(agent_patch(**{WIREGUARD_PUBLIC_KEY: None}), old=only_ours))
    assert d.matched and d.allowed, d.message


def test_an_unchanged_node_is_allowed(policy) -> None:
    d = policy.admit(own({}))
    assert d.matched and d.allowed, d.message


# -- what a compromised agent might try: denied ----------------------------------------------

def test_another_nodes_keys_or_encryption_are_refused(policy) -> None:
    old = node("node-b")
    for patch in (agent_patch(**{WIREGUARD_PUBLIC_KEY: "YXR0YWNrZXI="}),   # man in the middle
                  agent_patch(**{"vppagent.io/encryption": "none"}),          # downgrade
                  AGENT_PUBLISHES):
        d = policy.admit(request(old, update(old, patch), extra=token_of("node-a")))
        assert d.matched and not d.allowed
        assert "node-a" in d.message and "node-b" in d.message, d.message


@pytest.mark.parametrize("patch", [
    {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}},
    {"metadata": {"labels": {"kubernetes.io/hostname": "node-b"}}},
    {"metadata": {"labels": {"node-role.kubernetes.io/worker": None}}},
], ids=["label-added", "label-changed", "label-removed"])
def test_labels_are_refused(policy, patch) -> None:
    patch = {"metadata": {**patch["metadata"], **AGENT_PUBLISHES["metadata"]}}
    d = policy.admit(own(patch))
    assert d.matched and not d.allowed and "labels" in d.message


@pytest.mark.parametrize("patch", [
    {"spec": {"taints": None}},
    {"spec": {"taints": [{"key": "dedicated", "value": "evil", "effect": "NoSchedule"}]}},
    {"spec": {"podCIDR": "10.244.9.0/24", "podCIDRs": ["10.244.9.0/24"]}},
    {"spec": {"unschedulable": True}},
], ids=["taints-removed", "taint-changed", "pod-cidr", "unschedulable"])
def test_spec_changes_are_refused(policy, patch) -> None:
    d = policy.admit(own(patch))
    assert d.matched and not d.allowed and "spec" in d.message


@pytest.mark.parametrize("patch", [
    agent_patch(**{"example.com/owner": "me"}),
    agent_patch(**{"node.alpha.kubernetes.io/ttl": "30"}),
    agent_patch(**{"volumes.kubernetes.io/controller-managed-attach-detach": None}),
    agent_patch(**{"xvppagent.io/encryption": "none"}),
    agent_patch(**{"sub.vppagent.io/encryption": "none"}),
], ids=["added", "changed", "removed", "prefix-lookalike", "subdomain"])
def test_foreign_annotations_are_refused(policy, patch) -> None:
    patch["metadata"]["annotations"].update(AGENT_PUBLISHES["metadata"]["annotations"])
    d = policy.admit(own(patch))
    assert d.matched and not d.allowed and "vppagent.io/" in d.message


@pytest.mark.parametrize("patch", [
    {"metadata": {"finalizers": ["example.com/block-deletion"]}},
    {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "x", "uid": "u"}]}},
], ids=["finalizers", "owner-references"])
def test_other_metadata_is_refused(policy, patch) -> None:
    d = policy.admit(own(patch))
    assert d.matched and not d.allowed


@pytest.mark.parametrize("extra", [
    None,                                                                    # no extra at all
    {"authentication.kubernetes.io/pod-name": ["vppagent-x7k2p"]},           # no node information
    {NODE_NAME_EXTRA: []},
    {NODE_NAME_EXTRA: [""]},
], ids=["no-extra", "no-node-name", "empty-list", "empty-name"])
def test_a_token_without_its_node_is_refused(policy, extra) -> None:
    old = node("node-a")
    d = policy.admit(request(old, update(old, AGENT_PUBLISHES), extra=extra))
    assert d.matched and not d.allowed
    assert NODE_NAME_EXTRA in d.message


# -- what the policy does not concern itself with ----------------------------------------------

@pytest.mark.parametrize("username", [
    "system:node:node-a",                                  # the kubelet (NodeRestriction's business)
    "system:serviceaccount:kube-system:node-controller",
    "system:serviceaccount:default:vppagent",              # same name, another namespace
    "kubernetes-admin",
])
def test_other_users_are_not_matched(policy, username) -> None:
    old = node("node-a")
    new = update(old, {"spec": {"taints": None}, "metadata": {"labels": {"x": "y"}}})
    d = policy.admit(request(old, new, username=username, extra=token_of("node-b")))
    assert not d.matched and d.allowed


def test_only_updates_of_nodes_are_matched(policy) -> None:
    old = node("node-a")
    new = update(old, {"spec": {"taints": None}})
    for req in (request(old, new, extra=token_of("node-b"), operation="DELETE"),
                request(old, new, extra=token_of("node-b"), operation="CREATE"),
                request(old, new, extra=token_of("node-b"), sub_resource="status")):
        assert not policy.admit(req).matched
    # ... which covers every write the agent's role allows on nodes
    role = _one(_docs(DEPLOY / "rbac.yaml"), "ClusterRole")
    node_verbs = {v for r in role["rules"] if "nodes" in r["resources"] or any(
        res.startswith("nodes/") for res in r["resources"]) for v in r["verbs"]}
    assert node_verbs - {"get", "list", "watch"} == {"patch"}, "patch (and update) arrive as UPDATE"
