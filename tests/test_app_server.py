"""The real `streamlit run app.py` process answers on its port."""

import requests

from tests.servers import streamlit_app


def test_streamlit_serves_health_and_the_app_page(demo_env: dict[str, str]) -> None:
    with streamlit_app(demo_env) as base:
        health = requests.get(f"{base}/_stcore/health", timeout=10)
        assert health.status_code == 200 and health.text == "ok"
        page = requests.get(base, timeout=10)
        assert page.status_code == 200
        assert '<div id="root">' in page.text or 'id="root"' in page.text
