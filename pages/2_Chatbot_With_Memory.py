import streamlit as st

from view.chat_view import MemoryChatView

st.set_page_config(page_title="Chatbot With Memory · bnaGPT", page_icon="🧠")
MemoryChatView()()
