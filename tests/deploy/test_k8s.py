"""deploy/k8s: the Strimzi KRaft cluster and the KafkaTopics generated from the topic registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quartet_contracts.topics import CORE_TOPICS, expand
from quartet_shared.settings import KernelSettings
from quartet_tools import strimzi

from tests.deploy.manifests import REPO, documents, validate

K8S = REPO / "deploy" / "k8s"


def by_kind(path: str) -> dict[str, list[dict[str, Any]]]:
    """The file's documents grouped by kind."""
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in documents((K8S / path).read_text()):
        out.setdefault(doc["kind"], []).append(doc)
    return out


@pytest.mark.parametrize("path", ["kafka-cluster.yaml", "kafka-topics.yaml"])
def test_manifests_match_the_strimzi_crds(path: str) -> None:
    """Every resource validates against the CRD schema Strimzi's own generator produces."""
    problems = [p for doc in documents((K8S / path).read_text()) for p in validate(doc)]
    assert not problems, "\n".join(problems)


def test_the_crd_check_rejects_a_misspelt_field() -> None:
    """The CRD check is not vacuous: an unknown field and a wrong type both fail it."""
    pool = by_kind("kafka-cluster.yaml")["KafkaNodePool"][0]
    assert validate({**pool, "spec": {**pool["spec"], "replica": 3}})
    assert validate({**pool, "spec": {**pool["spec"], "replicas": "three"}})


def test_cluster_is_three_kraft_nodes_with_rf3_and_min_isr2() -> None:
    """Three combined controller+broker nodes; topics and internal state replicated 3 times, writes need 2."""
    kinds = by_kind("kafka-cluster.yaml")
    (kafka,) = kinds["Kafka"]
    (pool,) = kinds["KafkaNodePool"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] == strimzi.DEFAULT_CLUSTER
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["transaction.state.log.replication.factor"] == 3
    assert config["transaction.state.log.min.isr"] == 2
    assert config["auto.create.topics.enable"] is False
    assert "zookeeper" not in kafka["spec"]
    assert "topicOperator" in kafka["spec"]["entityOperator"]


def test_topics_file_is_what_the_registry_generates() -> None:
    """The committed file is exactly the generator's output (regenerate: python -m quartet_tools.strimzi)."""
    assert strimzi.main(["--check"]) == 0
    assert (K8S / "kafka-topics.yaml").read_text() == strimzi.render()


def test_topics_match_the_registry_one_for_one() -> None:
    """One KafkaTopic per registry topic and companion, with its partitions, retention and compaction."""
    topics = {doc["metadata"]["name"]: doc for doc in by_kind("kafka-topics.yaml")["KafkaTopic"]}
    specs = expand(CORE_TOPICS)
    assert set(topics) == {s.name for s in specs}
    defaults = KernelSettings.model_construct()
    for spec in specs:
        topic = topics[spec.name]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == strimzi.DEFAULT_CLUSTER
        assert topic["spec"]["partitions"] == (spec.partitions or defaults.topic_partitions)
        assert topic["spec"]["replicas"] == 3
        config = topic["spec"]["config"]
        assert config["min.insync.replicas"] == "2"
        assert config["retention.ms"] == str(spec.retention_ms or defaults.topic_retention_ms)
        assert (config.get("cleanup.policy") == "compact") == spec.compacted


def test_the_drift_check_notices_a_registry_change(tmp_path: Path) -> None:
    """--check fails when the file on disk differs from what the registry generates."""
    stale = tmp_path / "kafka-topics.yaml"
    stale.write_text((K8S / "kafka-topics.yaml").read_text().replace("partitions: 1\n", "partitions: 2\n", 1))
    assert strimzi.main(["--check", "--out", str(stale)]) == 1
    assert strimzi.main(["--out", str(stale)]) == 0
    assert strimzi.main(["--check", "--out", str(stale)]) == 0
