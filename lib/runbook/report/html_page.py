"""report.html: one self-contained file to open after a run.

The summary, every chart embedded (no image files needed), the executed notebooks
rendered with nbconvert (their outputs included), and links to the CSVs in the run
folder. It opens in a browser with no network: no script, style sheet or font is fetched.
Written at the end of a run, so that every stage's notebook (teardown's too) is in it.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path

from runbook.core.rundir import RunFolder, utc_now

log = logging.getLogger(__name__)

FILE = "report.html"
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #1f2328; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #d0d7de; padding: 4px 8px; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 90%; background: #f6f8fa; }
pre { padding: 8px; overflow-x: auto; } img { max-width: 100%; }
details { border: 1px solid #d0d7de; margin: 0.5em 0; padding: 0.3em 0.8em; } summary { cursor: pointer; font-weight: 600; }
.nb .input_area, .nb .jp-InputArea { background: #f6f8fa; }
.good { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; } .warn { color: #9a6700; font-weight: 600; }
"""
#: Status words the summary writes, coloured here (the words carry the meaning; an emoji beside them may not render).
_STATUS = [(re.compile(r"\b(held|passed|agree)\b"), "good"), (re.compile(r"\b(failed|FAILED|over the limit)\b"), "bad"),
           (re.compile(r"\b(differ|incomplete|interrupted|within the limit|Warning)\b"), "warn")]


def _colour_status(markup: str) -> str:
    """Wrap the status words of table cells and headings in a coloured span."""
    def cell(match: re.Match[str]) -> str:
        text = match[2]
        for pattern, kind in _STATUS:
            text = pattern.sub(lambda m, kind=kind: f'<span class="{kind}">{m[0]}</span>', text)
        return f"{match[1]}{text}{match[3]}"

    return re.sub(r"(<(?:td|h[1-4])>)(.*?)(</(?:td|h[1-4])>)", cell, markup)


def _markdown(text: str) -> str:
    import mistune

    # escape=True: HTML in the run's data (error texts) stays text.
    return str(mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])(text))


def _embed_images(markup: str, folder: Path) -> str:
    """<img src="chart.png"> -> a data URI, for the charts beside the summary."""
    def replace(match: re.Match[str]) -> str:
        path = folder / html.unescape(match[1])
        if path.suffix != ".png" or not path.is_file() or path.parent != folder:
            return match[0]
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'src="([^":/]+)"', replace, markup)


def _notebook(path: Path, exporter: object) -> str:
    import nbformat

    body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))  # type: ignore[attr-defined]
    return body


class NotebookPages:
    """Executed notebooks rendered in a thread while the load test runs, so that little is left for the end.

    add() queues a notebook; start(delay) renders the queue from `delay` seconds on (Locust's own start
    first); stop() ends the thread after the notebook in hand: what is added after it is left to write().
    write() takes a page from here when its notebook has not changed since, and renders the others itself.
    """

    def __init__(self) -> None:
        import queue
        import threading

        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._pages: dict[Path, tuple[int, str]] = {}  # notebook -> (its mtime when rendered, the page)
        self._thread = threading.Thread(target=self._run, name="notebook-pages", daemon=True)
        self._go = threading.Event()
        self.delay = 0.0
        self.exporter: object | None = None  # nbconvert's, once made: write() uses it too

    def add(self, path: Path) -> None:
        self._queue.put(path)

    def start(self, delay: float = 0.0) -> None:
        if self._thread.ident is None:
            self.delay = delay
            self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._go.set()  # a thread still in its delay ends at once

    def finish(self, timeout: float = 30.0) -> None:
        """No more rendering here: stop, and wait for the notebook in hand."""
        self.stop()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def page(self, path: Path) -> str | None:
        found = self._pages.get(path)
        try:
            return found[1] if found and found[0] == path.stat().st_mtime_ns else None
        except OSError:
            return None

    def _run(self) -> None:
        if self._go.wait(self.delay):
            return  # stopped before it began
        while (path := self._queue.get()) is not None:
            try:
                if self.exporter is None:
                    from nbconvert import HTMLExporter

                    self.exporter = HTMLExporter(template_name="basic")
                stamp = path.stat().st_mtime_ns
                self._pages[path] = (stamp, _notebook(path, self.exporter))
            except Exception as exc:  # write() renders it again, and says what failed there
                log.debug("rendering %s ahead failed: %s", path, exc)


def write(folder: RunFolder, pages: NotebookPages | None = None) -> Path:
    """Write report/report.html for the run folder (notebooks from pages where they were rendered ahead)."""
    parts = [f"<h1>Runbook report: {html.escape(folder.path.name)}</h1>",
             f"<p>Made {html.escape(utc_now())} from the run folder <code>{html.escape(str(folder.path))}</code>.</p>"]
    summary = folder.report / "summary.md"
    if summary.is_file():
        parts.append(_colour_status(_embed_images(_markdown(summary.read_text()), folder.report)))
    else:
        parts.append("<p><strong>The run stopped before its report</strong>: the notebooks below say where.</p>")
    data = sorted(folder.load_test.glob("*.csv")) if folder.load_test.is_dir() else []
    data += [p for p in (folder.load_test / "report.html",) if p.is_file()]  # Locust's own report
    data += [p for p in (folder.load_test / "server" / "samples.jsonl",) if p.is_file()]  # the server side's readings
    if data:
        parts.append("<h2>Data</h2><p>In the run folder (the <code>runbook-results</code> artifact in CI):</p><ul>")
        names = [html.escape(str(p.relative_to(folder.load_test))) for p in data]
        parts += [f'<li><a href="../load_test/{name}">load_test/{name}</a>'
                  f'{" (Locust&#x27;s own report)" if name == "report.html" else ""}</li>' for name in names]
        parts.append("</ul>")
    notebooks = sorted(folder.notebooks.glob("*.ipynb")) if folder.notebooks.is_dir() else []
    if pages is not None:
        pages.finish()
    exporter = pages.exporter if pages is not None else None
    if notebooks:
        parts.append("<h2>Executed notebooks</h2>")
    for path in notebooks:
        try:
            rendered = pages.page(path) if pages is not None else None
            if rendered is None:
                if exporter is None:
                    from nbconvert import HTMLExporter

                    exporter = HTMLExporter(template_name="basic")  # one for all: loading its templates is the slow part
                rendered = _notebook(path, exporter)
        except Exception as exc:  # one unreadable notebook must not cost the others
            rendered = f"<p>could not render {html.escape(path.name)}: {html.escape(str(exc))}</p>"
        parts.append(f'<details class="nb"><summary>{html.escape(path.name)}</summary>{rendered}</details>')
    out = folder.report / FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Runbook report</title>"
                   f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    return out
