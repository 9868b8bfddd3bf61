import streamlit as st

from view.chat_view import SimpleChatView

st.set_page_config(page_title="Simple Chatbot · bnaGPT", page_icon="💬")
SimpleChatView()()
