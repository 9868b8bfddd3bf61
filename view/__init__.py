"""Streamlit only: layout, widgets, session_state, and turning errors into messages."""
