"""The app's verbs: chat, save, load, rename, delete, export. No Streamlit here."""
