import streamlit as st

from view.assistants_view import AssistantsView

st.set_page_config(page_title="Assistants · bnaGPT", page_icon=":material/smart_toy:")
AssistantsView()()
