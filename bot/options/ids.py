"""Ids for positions, orders, fills and events: opaque, unique across runs, never from a seeded RNG."""

import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"
