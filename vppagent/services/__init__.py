"""Services: Kubernetes Services and their EndpointSlices as VPP load balancing (cnat).

Owns, one module per concern:

- ``translations``: the ``cnat-translation`` reconciler kind (value, descriptor, ownership);
- ``expansion``: Service + EndpointSlices -> translations (types, ports, endpoint
  selection, traffic policies, affinity, the ``vppagent.io/lb`` annotation);
- ``snat``: the ``cnat-snat`` kind (SNAT addresses, k8s policy, exclusions) and
  what cnat needs on an interface (``attach_interface``);
- ``feature``: ``ServiceTranslations``, the agent feature (full and incremental paths).

Must not touch: VPP directly (only through its descriptors, run by the
reconciler), the Kubernetes API, routes.
"""
from .expansion import LB_ANNOTATION, Scope, expand as expand_service, flow_hash_of
from .feature import ServiceTranslations
from .snat_kind import KIND as SNAT_KIND, InterfaceRole, SnatConfig, SnatDescriptor, attach_interface, detach_interface
from .translation_kind import KIND as TRANSLATION_KIND, Backend, ServiceTranslation, TranslationDescriptor

__all__ = ["Backend", "InterfaceRole", "LB_ANNOTATION", "SNAT_KIND", "Scope", "ServiceTranslation",
           "ServiceTranslations", "SnatConfig", "SnatDescriptor", "TRANSLATION_KIND", "TranslationDescriptor",
           "attach_interface", "detach_interface", "expand_service", "flow_hash_of"]
