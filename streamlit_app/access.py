"""The app's door: local visitors only, or visitors with the access token.

Runs first on every script run (``app.py``). The rules live in ``core.access``; this module
only reads the request (``st.context``) and shows the login form or the refusal.
"""

from __future__ import annotations

import streamlit as st

from core import access

GRANTED_KEY = "_access_granted"


def _refuse(message: str) -> None:
    st.error(message, icon=":material/block:")
    st.stop()


def _bound_to_loopback() -> bool:
    address = st.get_option("server.address")
    return bool(address) and access.is_loopback(str(address))


def _login(token: str) -> None:
    """Grant the session when it gives the token (``?token=`` in the URL or the form)."""
    given = st.query_params.get("token")
    if given is not None:
        del st.query_params["token"]  # keep it out of the address bar and shared links
    if access.token_matches(given, token):
        st.session_state[GRANTED_KEY] = True
        return
    st.title("LLM Finance Leaderboard")
    st.write("This app is shared on the network: give the access token to continue.")
    with st.form("access_token"):
        typed = st.text_input("Access token", type="password")
        if st.form_submit_button("Open the app", type="primary"):
            if access.token_matches(typed, token):
                st.session_state[GRANTED_KEY] = True
                st.rerun()
            st.error("That is not the access token.")
    st.stop()


def guard() -> None:
    """Stop the script unless this visitor may see the app."""
    host = st.context.headers.get("Host")
    if host is None:  # not served over HTTP (AppTest, bare mode): nobody to keep out
        return
    token = access.configured_token()
    if not token and not _bound_to_loopback():
        _refuse(
            "The app was started on every network interface without an access token, so it "
            "serves nobody. Start it with `finboard app` (this machine only), or "
            f"`finboard app --host 0.0.0.0 --expose --token ...` (or set {access.TOKEN_ENV})."
        )
    if not access.host_allowed(host, token):
        _refuse(
            f"This app answers requests for this machine only, not for {host!r}. To use "
            f"another name for it, list it in {access.ALLOWED_HOSTS_ENV}."
        )
    if token and not st.session_state.get(GRANTED_KEY):
        _login(token)
