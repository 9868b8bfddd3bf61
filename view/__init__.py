"""Streamlit only: layout, widgets, session_state, and turning errors into messages."""

from utils.quiet import silence_known_warnings

silence_known_warnings()
