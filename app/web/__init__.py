"""Local web page (Gradio) over the library: `python -m app web`. See app/web/app.py."""
