"""Everything segcheck knows about OVN-Kubernetes' NB objects for secondary networks, in one place.

`names` (switches, ports, hashes), `ids` (external_ids keys and owner types), `versions` (which OVN-K
writes which shapes), `objects` (each object's name and external_ids per version), `matches` (ACL match
clauses), `families` (which IP families a network's matches cover), `ports` (the switch and pod ports), `desired` (the NB objects OVN-K writes for a network's policies)
and `ownership` (reading who owns an NB row back). Both the programmed-plane reader and the lab's controller use it, so they cannot drift apart.
This module imports nothing: `desired` depends on the enforcement model, which depends on `versions`.
"""
