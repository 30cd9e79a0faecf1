#!/bin/bash
# One Kafka node on 127.0.0.1:$RENEWALS_KAFKA_PORT (controller on $RENEWALS_KAFKA_CONTROLLER_PORT),
# from the same server.properties template as the local broker. The storage is formatted once;
# a restarted container keeps its data and cluster id.
set -euo pipefail

DATA=/var/lib/kafka
CONFIG=/opt/kafka/config
KAFKA_JAVA=(java "-Xmx$KAFKA_HEAP" -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$CONFIG/log4j2.properties" -cp '/opt/kafka/libs/*')

mkdir -p "$DATA"
sed -e "s|@KAFKA_PORT@|$RENEWALS_KAFKA_PORT|g" \
  -e "s|@CONTROLLER_PORT@|$RENEWALS_KAFKA_CONTROLLER_PORT|g" \
  -e "s|@DATA_DIR@|$DATA|g" \
  "$CONFIG/server.properties" >/tmp/server.properties

if [[ ! -f $DATA/meta.properties ]]; then
  # What `StorageTool random-uuid` prints (16 random bytes, URL-safe base64, not starting with
  # "-"), without a JVM start of its own.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c /tmp/server.properties
fi
exec "${KAFKA_JAVA[@]}" kafka.Kafka /tmp/server.properties
