from __future__ import annotations

from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code


async def ensure_topics(admin: AIOKafkaAdminClient, partitions: Mapping[str, int], *, replication: int) -> list[str]:
    """Create the topics of ``partitions`` (name -> partition count) that do not exist yet; returns those created.

    A topic that exists is left as it is, whatever its partition count.
    """
    existing = set(await admin.list_topics())
    missing = [NewTopic(name, count, replication) for name, count in partitions.items() if name not in existing]
    if not missing:
        return []
    response = await admin.create_topics(missing)
    created = []
    for name, code, *_ in response.topic_errors:
        if code == 0:
            created.append(name)
        elif for_code(code) is not TopicAlreadyExistsError:  # another process may have created it meanwhile
            raise for_code(code)(f"could not create topic {name}")
    return created
