"""Request and event ids: random version-4 UUIDs in their canonical text form."""

from __future__ import annotations

import os
import uuid
from collections import Counter

from strongroom.domain.requestids import new_id


def test_new_id_is_a_canonical_version_4_uuid() -> None:
    for _ in range(2000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_new_id_keeps_every_other_bit_random() -> None:
    ids = [uuid.UUID(new_id()).int for _ in range(4000)]
    assert len(set(ids)) == len(ids)
    fixed = (0xF << 76) | (0x3 << 62)  # the version nibble and the variant's two bits
    for bit in range(128):
        if fixed >> bit & 1:
            continue
        ones = sum(value >> bit & 1 for value in ids)
        assert 1600 < ones < 2400, f"bit {bit} is set in {ones} of 4000 ids"
    # The variant digit takes each of 8, 9, a, b.
    assert set(Counter(new_id()[19] for _ in range(400))) == set("89ab")


def test_a_forked_process_makes_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != new_id()
