"""Deployment tests: compose, nginx, Prometheus/Grafana and Kubernetes files.

They read and render the files under deploy/, k8s/ and docker-compose.yml;
none needs a container engine or a cluster. The helpers next to this file
(kustomize_lite, nginx_template, metric_names) are imported by module name.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
