# Prometheus from Debian's package, with the project's alert rules; the scrape targets are the
# stack's ports (deploy/docker/stack.env), written into its configuration when it starts.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
COPY alerts.yml /etc/renewals-prometheus/alerts.yml
COPY prometheus-entrypoint.sh /usr/local/bin/prometheus-entrypoint.sh
ENV RENEWALS_PROMETHEUS_PORT=9090
HEALTHCHECK --interval=2s --timeout=3s --retries=30 CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/$RENEWALS_PROMETHEUS_PORT'
CMD ["/usr/local/bin/prometheus-entrypoint.sh"]
