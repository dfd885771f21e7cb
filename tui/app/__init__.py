"""The Textual app. Imported only when the wizard or the monitor screen opens."""


def run_app(monitor=None, auto_retry: int = 0) -> int:
    from tui.app.main import SftTuiApp

    SftTuiApp(monitor=monitor, auto_retry=auto_retry).run()  # Detach's "how to re-attach" is printed by Textual on exit
    return 0
