"""Compose's `cluster` profile: three KRaft nodes of the project's Kafka image, RF 3, min ISR 2."""

from __future__ import annotations

import json

from quartet_tools.infra import ROOT, kafka_version

from tests.deploy.compose_file import compose, published

NODES = ("kafka-1", "kafka-2", "kafka-3")
PROXIES = ROOT / "deploy" / "docker" / "toxiproxy" / "proxies.json"


def test_the_cluster_profile_is_three_voting_nodes_of_the_broker_image() -> None:
    services = compose()["services"]
    envs = [services[name]["environment"] for name in NODES]
    for name in NODES:
        assert services[name]["profiles"] == ["cluster"]
        assert services[name]["image"] == f"quartet/kafka:{kafka_version()}"
        assert services[name]["healthcheck"]["test"]
    assert [env["KAFKA_NODE_ID"] for env in envs] == [1, 2, 3]
    assert {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs} == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    for env in envs:
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"


def test_each_node_has_its_own_data_and_advertises_its_proxies_for_both_client_listeners() -> None:
    """Every client connection to node N crosses proxy N: the node advertises the proxy's addresses, which the
    proxy server creates at start (to the node's listeners) and publishes on the host."""
    services = compose()["services"]
    volumes = [services[name]["volumes"][0].split(":")[0] for name in NODES]
    assert len(set(volumes)) == 3
    assert set(volumes) <= set(compose()["volumes"])
    proxy = services["toxiproxy"]
    assert proxy["profiles"] == ["cluster"]
    published_ports = {published(mapping)[1]: published(mapping)[2] for mapping in proxy["ports"]}
    proxies = {p["name"]: p for p in json.loads(PROXIES.read_text())}
    for name in NODES:
        assert "ports" not in services[name]
        assert services[name]["depends_on"]["toxiproxy"]["condition"] == "service_healthy"
        advertised = services[name]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        listeners = services[name]["environment"]["KAFKA_LISTENERS"]
        internal, external = (proxies[name], proxies[f"{name}-host"])
        host_port = external["listen"].rsplit(":", 1)[1]
        assert advertised == (
            f"INTERNAL://toxiproxy:{internal['listen'].rsplit(':', 1)[1]},EXTERNAL://localhost:{host_port},"
            "HEALTH://127.0.0.1:19099"
        )
        assert internal["upstream"] == f"{name}:19092"
        assert external["upstream"] == f"{name}:{host_port}"
        assert f"EXTERNAL://:{host_port}" in listeners
        assert published_ports[host_port] == host_port


def test_each_node_checks_its_own_health_on_its_own_loopback_listener_never_through_a_proxy() -> None:
    """The health check's tool asks every broker of the metadata, at its advertised address: on HEALTH every node
    advertises its own loopback, so no check reaches a proxy or another node (tests/deploy/test_compose_toxics.py
    black-holes and cuts off a node on a real engine and runs the others' checks)."""
    services = compose()["services"]
    for name in NODES:
        env = services[name]["environment"]
        assert services[name]["healthcheck"]["test"] == [
            "CMD",
            "/opt/kafka/bin/kafka-broker-api-versions.sh",
            "--bootstrap-server",
            "127.0.0.1:19099",
        ]
        assert "HEALTH://127.0.0.1:19099" in env["KAFKA_LISTENERS"].split(",")
        assert "HEALTH://127.0.0.1:19099" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert "HEALTH:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
        assert "toxiproxy" not in " ".join(services[name]["healthcheck"]["test"])
