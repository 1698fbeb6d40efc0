"""segcheck's dashboards: one source (panels.py), rendered for Grafana and the OpenShift console (generate.py)."""
