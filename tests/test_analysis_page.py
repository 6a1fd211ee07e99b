"""report.html as a person sees it: rendered by a real headless browser (Debian's chromium through selenium and
/usr/bin/chromedriver, nothing downloaded), with the fix list, the timeline picture, no broken image and no
console error; and a file name with HTML in it shown as text, never as markup."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_VIDEOS, run_cli, splice

from tubelet.analysis import analyze, write_report
from tubelet.data.synthetic import write_video

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NAME = '<b id="injected" onmouseover="alert(1)">cut&paste.mp4'  # no slash: a file name



@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`tubelet analyze` on two real shots and a frozen end, under a file name full of HTML."""
    root = tmp_path_factory.mktemp("page")
    clip, frozen = root / NAME, root / "frozen.mp4"
    write_video(frozen, np.repeat(np.linspace(0, 255, 320 * 180 * 3).astype(np.uint8).reshape(1, 180, 320, 3), 75, 0),
                fps=25)
    splice([(REAL_VIDEOS / "yoga_outdoor.mp4", 0.0, 2.0), (REAL_VIDEOS / "dog_with_owner.mp4", 0.0, 2.0),
            (frozen, 0.0, 3.0)], clip)
    a, sig = analyze(clip)
    _, html = write_report(a, sig, root / "report")
    return a, html


def test_file_name_is_escaped(report):
    a, html = report
    page = html.read_text()
    assert "&lt;b id=&#34;injected&#34;" in page and "cut&amp;paste" in page
    assert '<b id="injected"' not in page and "onmouseover=\"alert" not in page


@pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()), reason="Debian chromium/chromedriver not installed")
def test_page_in_a_headless_browser(report):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    a, html = report
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    try:
        driver.get(html.as_uri())
        assert driver.find_element(By.TAG_NAME, "h1").text == NAME  # shown as text …
        assert driver.find_elements(By.ID, "injected") == []  # … not made into an element
        fixes = driver.find_elements(By.CSS_SELECTOR, "#fixes li")
        assert [f.text.split(" s ")[0] for f in fixes] == [f"{f.start_s:.1f}–{f.end_s:.1f}" for f in a.fixes]
        assert any("frozen or static picture" in f.text for f in fixes)
        timeline = driver.find_element(By.ID, "timeline")
        assert driver.execute_script("return arguments[0].naturalWidth", timeline) > 600
        broken = driver.execute_script(
            "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)")
        assert broken == [] and len(driver.find_elements(By.TAG_NAME, "img")) == 2
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        driver.quit()


def test_cli_prints_the_fix_list_first(report, tmp_path, monkeypatch, capsys):
    a, html = report
    clip = tmp_path / "v.mp4"
    shutil.copy(html.parent.parent / NAME, clip)
    code, out, err = run_cli(monkeypatch, capsys, "analyze", clip, "--out", tmp_path / "r")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Fix first:" and lines[1].startswith(f"1. {a.fixes[0].start_s:.1f}–{a.fixes[0].end_s:.1f} s")
    code, _, err = run_cli(monkeypatch, capsys, "analyze", clip, "--shots", "nope")
    assert code == 1 and err.startswith("error: ") and "unknown shot detector" in err
