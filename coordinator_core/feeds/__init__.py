"""Feed sources behind the ``FeedSource`` protocol, and the registry that builds them."""

from coordinator_core.feeds.base import FeedScope, FeedSource, SourceRecord
from coordinator_core.feeds.registry import create_source, register_source

__all__ = ["FeedScope", "FeedSource", "SourceRecord", "create_source", "register_source"]
