import streamlit as st

from view.models_view import ModelsView

st.set_page_config(page_title="Models · bnaGPT", page_icon="🧩")
ModelsView()()
