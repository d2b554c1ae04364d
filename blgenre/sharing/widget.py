"""A small prediction widget for readers running the book in Jupyter, Colab or Binder.

``prediction_widget()`` returns a Text box, a button and an output area; pressing the button
shows every available model's prediction. It uses the same checks and models as the demo app
(:mod:`blgenre.sharing.app`), one caller at a time per model, but needs no web server.
"""

from __future__ import annotations

from pathlib import Path

from blgenre.errors import BLGenreError
from blgenre.sharing.app import load_available, predict_all, script_note


def result_table(result: dict):
    """The app's result dict as a small table, one row per model."""
    import pandas as pd

    return pd.DataFrame.from_dict(result, orient="index").rename_axis("model")


def prediction_widget(models_root: str | Path | None = None, value: str = ""):
    """An ipywidgets ``VBox`` (Text + Button + Output) that classifies the typed title."""
    import ipywidgets as widgets
    from IPython.display import display

    models, missing = load_available(models_root)
    text = widgets.Text(value=value, placeholder="Type a book title", description="Title",
                        layout=widgets.Layout(width="70%"))
    button = widgets.Button(description="Classify", button_style="primary")
    out = widgets.Output()

    def on_click(_=None):
        out.clear_output()
        with out:
            try:
                result = predict_all(models, text.value)
            except BLGenreError as exc:  # an empty title, or a model that failed: one line
                print(exc)
                return
            display(result_table(result))
            note = script_note(text.value)
            if note:
                print(note)
            for message in missing.values():
                print(f"not available: {message}")

    button.on_click(on_click)
    box = widgets.VBox([widgets.HBox([text, button]), out])
    box.classify = on_click  # lets the book (and tests) press the button from code
    return box
