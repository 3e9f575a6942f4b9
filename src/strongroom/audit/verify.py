"""``audit verify``: every segment's hash chain, every writer's chain of signed digests, and
each segment against what the digests say of it.

Found and named: a line changed, inserted or removed (chain broken); data after the zeros
that end a segment; a digest whose signature does not verify or whose key is not trusted; a
digest missing from a writer's chain (a gap in the sequence, or a previous-digest hash
that does not match); a segment a digest names that is gone (unless a digest recorded its
removal by retention); a segment missing from a writer's sequence; a segment shorter than a
digest says (a cut tail) or whose line at that length has another hash. A segment still
written past its last digest is not a problem: the digests vouch for what they name.
Intent records (``audit/segments.py``) are in the chains and checked as events are; they
are counted apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.audit.digests import Digest, digest_files, digest_name, read_digest
from strongroom.audit.segments import (
    GENESIS,
    SegmentName,
    chain_hash,
    name_of,
    read_segment,
    segment_name,
    segments,
)
from strongroom.audit.signing import public_keys, signature_valid


@dataclass(slots=True)
class Report:
    """What ``verify_trail`` found: events checked, problems, and counts for the summary."""

    events: int = 0
    intents: int = 0  # intent records checked (not counted in ``events``)
    problems: list[str] = field(default_factory=list)
    segments: int = 0
    digests: int = 0
    removed: int = 0  # segments removed by retention, as digests recorded


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the newest valid digest says of a segment."""

    digest: str
    length: int
    end_hash: str


def verify_trail(directory: Path) -> tuple[int, list[str]]:
    """Walk every segment's chain and the digests; return the number of events and the
    problems found (the public keys trusted are those in the audit directory)."""
    report = verify(directory)
    return report.events, report.problems


def verify(directory: Path, trusted: dict[str, Ed25519PublicKey] | None = None) -> Report:
    """Check the trail of ``directory``; ``trusted``: the public keys digests may be
    signed by (default: every key in ``public-keys/``)."""
    report = Report()
    keys = public_keys(directory) if trusted is None else trusted
    claims, removed, named_seqs = _check_digests(directory, keys, report)
    present: dict[str, Path] = {name_of(path): path for path in segments(directory)}
    report.segments = len(present)
    for name, path in present.items():
        _check_segment(path, claims.get(name), report)
    for name, claim in sorted(claims.items()):
        if name in present:
            continue
        if name in removed:
            continue
        report.problems.append(
            f"{name}.log: missing segment (digest {claim.digest} says it holds "
            f"{claim.length} bytes)"
        )
    report.removed = sum(1 for name in removed if name not in present)
    _check_sequences(present, claims, removed, named_seqs, report)
    return report


def _check_digests(
    directory: Path, keys: dict[str, Ed25519PublicKey], report: Report
) -> tuple[dict[str, _Claim], set[str], dict[str, int]]:
    """Check each writer's digest chain; return what valid digests say of each segment
    (the newest claim), the segments removed by retention, and each writer's highest
    segment sequence that a digest names."""
    chains: dict[str, list[Digest]] = defaultdict(list)
    for path in digest_files(directory):
        try:
            digest = read_digest(path)
        except (OSError, ValueError) as exc:
            report.problems.append(f"digests/{path.name}: unreadable digest ({exc})")
            continue
        if path.name != digest_name(digest.writer, digest.seq):
            report.problems.append(
                f"digests/{path.name}: names itself {digest_name(digest.writer, digest.seq)}"
            )
            continue
        chains[digest.writer].append(digest)
    claims: dict[str, _Claim] = {}
    removed: set[str] = set()
    named: dict[str, int] = {}
    for writer, chain in sorted(chains.items()):
        chain.sort(key=lambda d: d.seq)
        previous: Digest | None = None
        for digest in chain:
            report.digests += 1
            if not _signed(digest, keys, report):
                previous = digest
                continue
            _check_link(writer, previous, digest, report)
            previous = digest
            for entry in digest.body["logFiles"]:
                name = str(entry["file"]).removesuffix(".log")
                claims[name] = _Claim(digest.file, int(entry["length"]), str(entry["endHash"]))
                seq = SegmentName.parse(name).seq
                if seq is not None:
                    named[writer] = max(named.get(writer, 0), seq)
            for entry in digest.body.get("removedFiles", []):
                removed.add(str(entry["file"]).removesuffix(".log"))
    return claims, removed, named


def _signed(digest: Digest, keys: dict[str, Ed25519PublicKey], report: Report) -> bool:
    where = f"digests/{digest.file}"
    fp = str(digest.body.get("digestPublicKeyFingerprint"))
    key = keys.get(fp)
    if key is None:
        report.problems.append(f"{where}: bad signature (signed by key {fp}, not a trusted key)")
        return False
    if not signature_valid(key, digest.signature, digest.signed):
        report.problems.append(f"{where}: bad signature (the digest was changed or forged)")
        return False
    return True


def _check_link(writer: str, previous: Digest | None, digest: Digest, report: Report) -> None:
    """A digest must follow the one before it in its writer's chain: the next sequence, and
    the previous digest's hash."""
    expected = 1 if previous is None else previous.seq + 1
    if digest.seq != expected:
        first, last = digest_name(writer, expected), digest_name(writer, digest.seq - 1)
        gap = first if expected == digest.seq - 1 else f"{first} to {last}"
        report.problems.append(
            f"digests/{gap}: missing digest (a gap in the digest chain before {digest.file})"
        )
        return
    if previous is None:
        return
    body = digest.body
    if (
        body.get("previousDigestFile") != previous.file
        or body.get("previousDigestHashValue") != previous.sha256
    ):
        report.problems.append(
            f"digests/{digest.file}: the previous digest {previous.file} is not the one it "
            "was signed after (its hash differs: it was replaced or changed)"
        )


def _check_segment(path: Path, claim: _Claim | None, report: Report) -> None:
    """Walk a segment's chain; check it holds at least what ``claim`` says, ending there in
    the hash ``claim`` says."""
    prev = GENESIS
    length = 0
    hash_at_claim = GENESIS if claim is not None and claim.length == 0 else None
    try:
        for record in read_segment(path, strict=True):
            if record.is_intent:  # chained and vouched for like an event, counted apart
                report.intents += 1
            else:
                report.events += 1
            where = f"{path.name} line {record.line}"
            if record.prev_hash != prev:
                report.problems.append(
                    f"{where}: chain broken (a line before it was changed or removed)"
                )
            if chain_hash(record.prev_hash, record.body) != record.hash:
                report.problems.append(f"{where}: event does not match its hash")
            prev, length = record.hash, record.end
            if claim is not None and record.end == claim.length:
                hash_at_claim = record.hash
    except ValueError as exc:
        lines = report.events + report.intents
        report.problems.append(f"{path.name}: malformed line after {lines} records ({exc})")
    except OSError as exc:  # a compressed segment that does not decompress
        report.problems.append(f"{path.name}: unreadable ({exc})")
        return
    if claim is None:
        return
    if length < claim.length:
        report.problems.append(
            f"{path.name}: cut tail: it holds {length} bytes of whole lines, digest "
            f"{claim.digest} says {claim.length}"
        )
    elif hash_at_claim != claim.end_hash:
        report.problems.append(
            f"{path.name}: does not match digest {claim.digest} (the line ending at byte "
            f"{claim.length} does not have the hash it says: cut and written again, or changed)"
        )


def _check_sequences(
    present: dict[str, Path],
    claims: dict[str, _Claim],
    removed: set[str],
    named: dict[str, int],
    report: Report,
) -> None:
    """Every writer's segments run 1, 2, 3, ...: one missing before the last one known is
    named, unless retention removed it."""
    known: dict[str, set[int]] = defaultdict(set)
    for name in (*present, *claims, *removed):
        parsed = SegmentName.parse(name)
        if parsed.seq is not None:
            known[parsed.writer].add(parsed.seq)
    for writer, seqs in sorted(known.items()):
        top = max(max(seqs), named.get(writer, 0))
        for seq in range(1, top + 1):
            name = segment_name(writer, seq)
            if seq not in seqs:
                report.problems.append(
                    f"{name}.log: missing segment ({writer} wrote segments up to {top:06d})"
                )
