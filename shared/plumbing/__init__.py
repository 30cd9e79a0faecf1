"""Service plumbing every process shares: HTTP, metrics, logs, fault points, spans, waiting for the infrastructure, the collector."""
