"""Pure core: data model, selectors, MultiNetworkPolicy semantics, reachability, drift. No I/O."""
