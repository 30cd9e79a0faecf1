#!/bin/bash
# One Kafka node on 127.0.0.1:$RENEWALS_KAFKA_PORT (controller on $RENEWALS_KAFKA_CONTROLLER_PORT),
# from the same server.properties and security.properties templates as the local broker: SASL/
# SCRAM-SHA-512 and ACLs. The passwords come from the secrets file mounted at
# $RENEWALS_SECRETS_FILE (shared/local_secrets.py). The storage is formatted once, with the super
# users' SCRAM credentials (KIP-900); a restarted container keeps its data and cluster id.
set -euo pipefail

DATA=/var/lib/kafka
CONFIG=/opt/kafka/config
SECRETS="${RENEWALS_SECRETS_FILE:-/run/secrets/renewals.env}"
# C1 only, as the local broker (deploy/local/infra.sh says why).
KAFKA_JAVA=(java "-Xmx$KAFKA_HEAP" -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$CONFIG/log4j2.properties" -cp '/opt/kafka/libs/*')

secret() {
  local value
  value=$(sed -n "s/^$1=//p" "$SECRETS" | tail -n 1)
  [[ -n $value ]] || {
    echo "kafka: $1 missing from $SECRETS (mount the stack's secrets file there)" >&2
    exit 1
  }
  echo "$value"
}

BROKER_PASSWORD=$(secret KAFKA_PASSWORD_BROKER) # assignments: a missing one stops the script
ADMIN_PASSWORD=$(secret KAFKA_PASSWORD_ADMIN)

mkdir -p "$DATA"
(
  umask 077 # it holds the broker's password
  sed -e "s|@KAFKA_PORT@|$RENEWALS_KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$RENEWALS_KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$DATA|g" \
    -e "s|@BROKER_PASSWORD@|$BROKER_PASSWORD|g" \
    "$CONFIG/server.properties" "$CONFIG/security.properties" >/tmp/server.properties
)

if [[ ! -f $DATA/meta.properties ]]; then
  # What `StorageTool random-uuid` prints (16 random bytes, URL-safe base64, not starting with
  # "-"), without a JVM start of its own.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c /tmp/server.properties \
    --add-scram "SCRAM-SHA-512=[name=broker,password=$BROKER_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]"
fi
exec "${KAFKA_JAVA[@]}" kafka.Kafka /tmp/server.properties
