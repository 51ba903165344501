"""Streamlit custom components of the workbench (each in its own folder with a static `index.html`).

They are served from the package itself and must work offline: no CDN, no build step.
"""
