"""The Textual wizard. Only this package imports Textual."""


def run_app() -> int:
    from tui.app.main import SftTuiApp

    SftTuiApp().run()
    return 0
