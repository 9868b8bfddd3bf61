"""LLM providers (embedded llama.cpp server, Groq, any OpenAI-compatible server) and small helpers."""
