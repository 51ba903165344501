"""What every page shares: the process's store and who is looking (participant or staff).

The only Streamlit-aware module in the package; it holds no SQL and no analysis.
"""

from __future__ import annotations

import streamlit as st

from . import config
from .store import Store, open_store


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return open_store(path)


def store() -> Store:
    """The process's one store (DuckDB allows a single writing process per file)."""
    return _store(str(config.db_path()))
