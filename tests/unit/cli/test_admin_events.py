"""The table of the admin commands' audit events covers every command that changes state."""

from __future__ import annotations

import argparse

import pytest

from strongroom.cli.admin_events import EVENTS, command_of
from strongroom.cli.main import build_parser

pytestmark = pytest.mark.unit

# The admin commands that only read (or, backup, write nothing of the data directory's).
READ_ONLY = {
    "list-principals",
    "list-access-keys",
    "list-user-policies",
    "list-role-policies",
    "list-user-tags",
    "list-role-tags",
    "get-role",
    "hsm-cluster list",
    "fault list",
    "quota list",
    "root-key status",
    "backup",
}


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(found.choices)


def _admin_commands() -> set[str]:
    admin = _choices(build_parser("admin"))["admin"]
    commands = set()
    for name, parser in _choices(admin).items():
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            commands |= {f"{name} {action}" for action in subs[0].choices}
        else:
            commands.add(name)
    return commands


def test_every_admin_command_that_changes_state_has_its_event() -> None:
    commands = _admin_commands()
    assert set(EVENTS) <= commands
    assert commands - READ_ONLY == set(EVENTS)


def test_command_of_names_the_action_of_a_command_with_actions() -> None:
    args = build_parser("admin").parse_args(["admin", "quota", "reset", "X"])
    assert command_of(args) == "quota reset"
    args = build_parser("admin").parse_args(["admin", "create-user", "alice"])
    assert command_of(args) == "create-user"
