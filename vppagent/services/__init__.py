"""Services: Kubernetes Services and their EndpointSlices as VPP load balancing (cnat).

Owns: turning Services into desired cnat objects, one module per service
feature. ``translations`` covers ClusterIPs (the first kind; NodePort,
LoadBalancer, externalIPs, affinity and traffic policies come later).
Must not touch: VPP directly (only through its descriptors, run by the
reconciler), the Kubernetes API, routes.
"""
from .translations import (
    KIND as TRANSLATION_KIND,
    Backend,
    ServiceTranslation,
    ServiceTranslations,
    TranslationDescriptor,
    expand,
)

__all__ = ["Backend", "ServiceTranslation", "ServiceTranslations", "TRANSLATION_KIND",
           "TranslationDescriptor", "expand"]
