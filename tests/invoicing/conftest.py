import pytest


@pytest.fixture
def documents_rendered(settings):
    """Documents are rendered and e-mailed as soon as they are issued, as in production."""
    settings.TOLLGATE_RENDER_DOCUMENTS = True
