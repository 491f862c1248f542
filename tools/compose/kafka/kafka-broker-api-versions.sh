#!/bin/sh
# The real image's tool of the same name (docker-compose.yml's healthcheck runs it).
exec java -cp '/opt/kafka/libs/*' -Dlog4j2.configurationFile=/etc/kafka/docker/tools-log4j2.yaml \
    org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
