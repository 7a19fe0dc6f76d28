#!/bin/sh
# Configured as apache/kafka is: each KAFKA_FOO_BAR variable becomes foo.bar=value in server.properties
# (___ -> "-", __ -> "_", _ -> "."), except those that are JVM options or the scripts' own settings.
# CLUSTER_ID formats the storage on the first start (a formatted log directory is left as it is).
set -eu
config=/opt/kafka/config/server.properties
: "${CLUSTER_ID:?set CLUSTER_ID (kafka-storage.sh random-uuid makes one): the storage is formatted with it}"

env | sort | while IFS='=' read -r name value; do
    case "$name" in
        KAFKA_OPTS | KAFKA_*_OPTS | KAFKA_LIBS | KAFKA_HOME | KAFKA_DEBUG | KAFKA_VERSION) ;;
        KAFKA_*)
            key="$(echo "${name#KAFKA_}" | tr 'A-Z' 'a-z' | sed 's/___/-/g; s/__/@/g; s/_/./g; s/@/_/g')"
            echo "$key=$value"
            ;;
    esac
done >"$config"

# A single controller without a static voter list bootstraps its quorum alone (--standalone).
standalone=""
if ! grep -q '^controller.quorum.voters=' "$config" && grep -q '^process.roles=.*controller' "$config"; then
    standalone="--standalone"
fi
kafka-storage.sh format --config "$config" --cluster-id "$CLUSTER_ID" --ignore-formatted $standalone
exec kafka-server-start.sh "$config"
