"""The Streamlit dashboard: a thin layer over planner.api (see docs/architecture.md)."""
