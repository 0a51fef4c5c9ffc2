"""Serving: the HTTP model server (Open Inference Protocol v2 and plain JSON), batch
scoring and deployment manifests."""

from shipyard.serving.app import Server, ServerConfig, create_app
from shipyard.serving.server import build_server
from shipyard.serving.validation import InputPolicy

__all__ = ["InputPolicy", "Server", "ServerConfig", "build_server", "create_app"]
