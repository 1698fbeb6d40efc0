"""The lab: a real OVS + OVN localnet topology in network namespaces."""
