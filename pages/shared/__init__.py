"""Streamlit helpers shared by the page scripts: session, job panel, queues, map, model view, text, figures."""
