#!/usr/bin/env bash
# Formats and inspects a KRaft log directory (format -t CLUSTER_ID -c server.properties, random-uuid, info).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
