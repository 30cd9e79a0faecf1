# Apache Kafka 4.1 in KRaft mode (one node, broker and controller): Java 17 from Debian and
# Apache's own jars from Maven Central (deploy/local/kafka/pom.xml, fetched by images.py).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY libs/ /opt/kafka/libs/
COPY server.properties security.properties log4j2.properties /opt/kafka/config/
COPY kafka-entrypoint.sh /usr/local/bin/kafka-entrypoint
ENV RENEWALS_KAFKA_PORT=9092 RENEWALS_KAFKA_CONTROLLER_PORT=9093 KAFKA_HEAP=512m \
    RENEWALS_SECRETS_FILE=/run/secrets/renewals.env
HEALTHCHECK --interval=1s --timeout=3s --retries=90 CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/$RENEWALS_KAFKA_PORT'
ENTRYPOINT ["/usr/local/bin/kafka-entrypoint"]
