"""Which version serves a request: a stable bucket of its id against the challenger's share.

The routing core (`router`), hence the demo's traffic, and the tests all assign requests
here, so they agree. The bucket is uniform on [0, 100) and fixed per request id: a request
served by the challenger at 10% is still served by it at 25%, so growing a stage never
flips a caller back.
"""

from __future__ import annotations

import hashlib


def bucket(request_id: str) -> float:
    """The request's place on [0, 100): the first 8 bytes of sha256(id), scaled."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def serves_challenger(request_id: str, traffic: float) -> bool:
    """Whether the challenger answers this request when it takes `traffic` percent."""
    return bucket(request_id) < traffic
