#!/bin/bash
# Write the scrape configuration for the stack's services (their ports come from the stack's
# environment, deploy/docker/stack.env), then run Prometheus in the foreground on 127.0.0.1.
set -euo pipefail

CONFIG=/etc/renewals-prometheus/prometheus.yml
target() { printf '      - targets: ["127.0.0.1:%s"]\n        labels: {process: %s}\n' "$1" "$2"; }
{
  cat <<YAML
# Written by prometheus-entrypoint.sh from the stack's ports (deploy/docker/stack.env).
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: renewals
    metrics_path: /metrics
    static_configs:
YAML
  target "$RENEWALS_RENEWAL_1_HTTP_PORT" renewal-1
  target "$RENEWALS_RENEWAL_2_HTTP_PORT" renewal-2
  target "$RENEWALS_BULK_WORKER_HTTP_PORT" bulk_worker
  target "$RENEWALS_BILLING_HTTP_PORT" billing
  target "$RENEWALS_NOTIFICATION_HTTP_PORT" notification
  target "$RENEWALS_QUOTE_HTTP_PORT" quote
} >"$CONFIG"
exec prometheus --config.file="$CONFIG" --storage.tsdb.path=/var/lib/prometheus \
  --web.listen-address="127.0.0.1:$RENEWALS_PROMETHEUS_PORT"
