"""riskd's HTTP surface beyond /metrics: the regime API, the probes, the schemas, the OpenAPI document,
the runbooks and the status page. ``riskd.sinks.metrics.MetricsServer`` mounts it next to /metrics."""
