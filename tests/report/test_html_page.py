"""report.html's notebook pages, rendered ahead as each stage ends: used when current, rendered again when not."""

import shutil

from conftest import ROOT
from runbook.core.rundir import RunFolder
from runbook.report import html_page


def test_pages_rendered_ahead_are_used_and_a_changed_notebook_is_rendered_again(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path / "run").create()
    folder.notebooks.mkdir(parents=True, exist_ok=True)
    first, second = folder.notebooks / "01_provision.ipynb", folder.notebooks / "02_ingress.ipynb"
    for path in (first, second):
        shutil.copy(ROOT / "tests" / "fixtures" / "tiny.ipynb", path)
    pages = html_page.NotebookPages()
    pages.add(first)
    pages.add(second)
    pages.start(delay=0)
    pages.add(first.with_name("03_deploy.ipynb"))  # missing: its page fails quietly, write() would render it
    import time

    deadline = time.monotonic() + 30
    while not (pages.page(first) and pages.page(second)) and time.monotonic() < deadline:
        time.sleep(0.05)  # rendered in the thread (a stop during its delay would cancel it)
    pages.finish()
    assert pages.page(first) and pages.page(second)
    # One notebook written again after its page was made (a stage run again): its page is stale.
    shutil.copy(ROOT / "tests" / "fixtures" / "tiny.ipynb", second)
    second.write_text(second.read_text().replace('"cells": [', '"cells": [', 1) + " ")
    assert pages.page(second) is None
    rendered = []
    real = html_page._notebook
    monkeypatch.setattr(html_page, "_notebook", lambda path, exporter: rendered.append(path.name) or real(path, exporter))
    out = html_page.write(folder, pages)
    assert rendered == ["02_ingress.ipynb"]  # only the stale one; the other page came from ahead
    page = out.read_text()
    assert page.count('<details class="nb">') == 2 and "01_provision.ipynb" in page and "could not render" not in page


def test_pages_not_started_are_all_rendered_by_write(tmp_path):
    folder = RunFolder(tmp_path / "run").create()
    folder.notebooks.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tests" / "fixtures" / "tiny.ipynb", folder.notebooks / "01_provision.ipynb")
    pages = html_page.NotebookPages()
    pages.add(folder.notebooks / "01_provision.ipynb")  # a run without a load test never starts the thread
    page = html_page.write(folder, pages).read_text()
    assert page.count('<details class="nb">') == 1 and "could not render" not in page


def test_a_stop_before_the_delay_renders_nothing_ahead(tmp_path):
    folder = RunFolder(tmp_path / "run").create()
    folder.notebooks.mkdir(parents=True, exist_ok=True)
    path = folder.notebooks / "01_provision.ipynb"
    shutil.copy(ROOT / "tests" / "fixtures" / "tiny.ipynb", path)
    pages = html_page.NotebookPages()
    pages.add(path)
    pages.start(delay=30)
    pages.finish(timeout=5)  # returns at once: the thread ends in its delay
    assert pages.page(path) is None and not pages._thread.is_alive()
