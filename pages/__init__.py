"""The app's pages (run through st.navigation in app.py) and the Streamlit-side helpers they share."""
