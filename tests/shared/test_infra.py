"""The native servers' helpers that need no server."""

from __future__ import annotations

import base64

from quartet_shared.infra import new_cluster_id


def test_cluster_ids_are_uuids_the_storage_tool_cannot_mistake_for_options() -> None:
    ids = [new_cluster_id() for _ in range(10_000)]
    # One plain base64 id in 64 starts with "-"; among 10,000 the old generator all but surely made some.
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
