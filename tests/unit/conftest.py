"""Unit tests run without a database: asking for one is an error, not a silent integration test."""
import pytest


@pytest.fixture(scope="session")
def server_url() -> str:
    raise pytest.UsageError("tests/unit needs no database; move this test to tests/integration")
