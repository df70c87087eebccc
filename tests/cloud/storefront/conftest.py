import pytest

from tests.cloud.storefront.shopkit import build_shop


@pytest.fixture
def shop(hub_url, key_store):
    s = build_shop(hub_url)
    yield s
    s.engine.dispose()
