"""The browser test's one loud line: when it was skipped (no Chromium or no Playwright), say so at the end of the
run, with how to enable it, so that a green `make test` does not hide an untested browser."""

from test_lab import SKIPPED


def pytest_terminal_summary(terminalreporter):
    if SKIPPED:
        terminalreporter.write_sep("!", "BROWSER TEST SKIPPED", red=True, bold=True)
        terminalreporter.write_line(f"tests/browser was skipped: {SKIPPED[0]}", red=True, bold=True)
