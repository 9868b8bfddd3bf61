import streamlit as st

from view.home_view import HomeView

st.set_page_config(page_title="bnaGPT", page_icon="🤖")
HomeView()()
