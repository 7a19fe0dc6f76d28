#!/usr/bin/env bash
# Creates, lists, describes and deletes topics (--bootstrap-server HOST:PORT).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
