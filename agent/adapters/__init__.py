"""Adapters: translate Kubernetes, OVSDB, namespaces, probers, metrics and HTTP into core types."""
