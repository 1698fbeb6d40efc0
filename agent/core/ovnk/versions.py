"""Which OVN-Kubernetes writes which NB shapes for MultiNetworkPolicies.

Cut-over: ovn-kubernetes commit 5aa56d377 ("Use owner-based ExternalIDs for port groups", merged upstream
2024-04) gave port groups owner-based ids and names hashed from their primary id. OpenShift 4.14
(upstream around 2023-08) predates it; 4.16 and later carry it.
"""

from __future__ import annotations

import enum


class NbShapes(enum.Enum):
    V4_14 = "4.14"  # port groups: HashForOVN(<net>_<ns>_<policy>), external_ids {name, k8s.ovn.org/network}
    CURRENT = "current"  # port groups: HashForOVN(primary id), owner-controller/owner-type/name/id
