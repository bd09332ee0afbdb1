"""Test doubles that speak real upstream protocols over real sockets (see feeds.md §8)."""
