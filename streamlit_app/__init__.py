"""The Streamlit app (UI only): `streamlit run streamlit_app/app.py` or `finboard app`."""
