"""The web page in a real browser: Debian's headless chromium driven by Selenium (nothing downloads a browser) —
choose a clip, see the similar videos, the originality timeline with its source and the report; browse; a
screenshot is saved (under the test's tmp dir, and to $TUBELET_SCREENSHOT when set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import splice
from serve_helpers import clip, make_catalog, running_server

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()), reason="Debian chromium not installed")


@pytest.fixture
def browser(monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,2600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_page_upload_results_and_browse(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    cat = make_catalog(tmp_path / "catalog", ["tennis_practice.mp4", "cat_lying_blanket.mp4", "bw_film_dialogue.mp4"])
    # 4 s of an indexed clip, then 4 s of one the catalog does not hold
    upload = tmp_path / "my_edit.mp4"
    splice([(clip("tennis_practice.mp4"), 0.5, 4.5), (clip("claymation_ad_cuts.webm"), 10.0, 14.0)], upload)
    with running_server(cat, tmp_path / "tmp") as (_, base, _, _):
        browser.get(base + "/")
        wait = WebDriverWait(browser, 300)
        wait.until(ec.text_to_be_present_in_element((By.ID, "catalog-summary"), "3 videos"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#videos .video")) == 3)
        browser.find_element(By.ID, "file").send_keys(str(upload))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hits .hit"))
        first = browser.find_element(By.CSS_SELECTOR, "#hits .hit")
        assert "tennis_practice.mp4" in first.text and "matches: your" in first.text
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#findings li"))
        spans = browser.find_elements(By.CSS_SELECTOR, "#spans li.copied")
        assert spans and all("tennis_practice.mp4" in s.text for s in spans)
        bars = browser.find_elements(By.CSS_SELECTOR, "#timeline .span")
        assert len(bars) == len(spans)
        score = browser.find_element(By.ID, "orig-score").text
        assert score.endswith("% original") and 20 <= int(score.split("%")[0]) <= 80  # about half copied
        assert browser.find_element(By.ID, "report-frame").get_attribute("src").endswith("/report")
        images = browser.find_elements(By.CSS_SELECTOR, "#hits img, #spans img")
        wait.until(lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
                                 for i in images))
        shot = tmp_path / "page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("TUBELET_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["TUBELET_SCREENSHOT"])
        # browse: a catalog video → more like it
        browser.find_element(By.CSS_SELECTOR, "#videos .video").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-hits .hit"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#detail-hits .hit")) == 2  # the other two videos
        assert not browser.find_element(By.ID, "error").is_displayed()
