import pytest

# the payment sandbox as a real process, and the hub served for its notifications
from tests.cloud.payments.conftest import hub_server, provider_side, sandbox  # noqa: F401
from tests.cloud.storefront.shopkit import build_shop


@pytest.fixture
def shop(hub_url, key_store):
    s = build_shop(hub_url)
    yield s
    s.engine.dispose()
