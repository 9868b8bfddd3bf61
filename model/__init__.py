"""Pure data: messages, conversations and the conversation store. No Streamlit, no LLM calls."""
