"""Request and event ids: UUID-shaped like AWS's, cheap to make on the hot path.

They identify, they do not protect, so they come from a fast PRNG seeded once from the
operating system rather than from ``os.urandom`` on every request.
"""

from __future__ import annotations

import random

_rng = random.Random()


def new_id() -> str:
    """A random version-4 UUID string."""
    h = f"{_rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
