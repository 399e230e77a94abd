"""Shared fixtures."""

import pytest

from .fakes import FakeBackend
from .mock_http import MockUpstream


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def mock_upstream():
    """`mock_upstream(handler)`: the base URL of a loopback server answering with an
    `httpx.MockTransport`-style handler (tests/mock_http.py); closed, and a handler's exception
    raised again, when the test ends."""
    servers: list[MockUpstream] = []

    def start(handler) -> str:
        servers.append(MockUpstream(handler))
        return servers[-1].url

    yield start
    for s in servers:
        s.close()
