"""Thin handlers: wire request (PascalCase members) -> service call -> wire response."""
