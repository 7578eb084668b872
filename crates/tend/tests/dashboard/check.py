"""Drives tend's dashboard in headless Chromium (selenium, the Debian chromedriver).

Usage: check.py URL SCREENSHOT_DIR

The page must show every instance, take a click on web.0's restart and show web.0's new PID,
show the new run's first log line as it comes, show a child's markup as text without running
it, and fit a phone's width. Each step waits for its condition (at most 20 s); the first that
does not hold ends the script with exit 1 and says which. Screenshots: dashboard.png (a
laptop's width), dashboard-phone.png (a phone's).
"""

import json
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, shots = sys.argv[1], sys.argv[2]
options = webdriver.ChromeOptions()
for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1280,900", "--no-first-run"):
    options.add_argument(arg)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
# A row the page replaced while the check read it is read again at the next poll.
wait = WebDriverWait(driver, 20, poll_frequency=0.05,
                     ignored_exceptions=(StaleElementReferenceException,))


def step(what, condition):
    try:
        return wait.until(lambda d: condition(d))
    except Exception as e:  # a timeout, or the page gone
        print(json.dumps({"failed": what, "error": repr(e)}))
        driver.save_screenshot(f"{shots}/dashboard-failed.png")
        driver.quit()
        sys.exit(1)


def pid_of(d, name):
    cells = d.find_elements(By.CSS_SELECTOR, f'tr[data-instance="{name}"] td.pid')
    return cells[0].text if cells else None


try:
    driver.get(url)
    step("every instance listed", lambda d: all(
        d.find_elements(By.CSS_SELECTOR, f'tr[data-instance="{n}"]') for n in ("web.0", "web.1", "evil.0")))
    step("web.0 running with a pid", lambda d: (pid_of(d, "web.0") or "-") != "-")
    step("the token out of the address bar", lambda d: "token" not in d.current_url)
    before = pid_of(driver, "web.0")
    print(json.dumps({"step": "listed", "web.0": before}))
    # The markup a child printed is text in the log view, and ran nowhere.
    step("the evil line shown as text", lambda d: any(
        "<script>window.pwned=1</script>" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#log .text")))
    pwned = driver.execute_script("return window.pwned === undefined ? null : window.pwned;")
    if pwned is not None:
        print(json.dumps({"failed": "a child's markup ran", "pwned": pwned}))
        sys.exit(1)
    def click_restart(d):
        d.find_element(By.CSS_SELECTOR, 'tr[data-instance="web.0"] button[data-verb="restart"]').click()
        return True
    step("a click on web.0's restart", click_restart)
    after = step("web.0's new pid", lambda d: (lambda p: p if p not in (None, "-", before) else None)(pid_of(d, "web.0")))
    print(json.dumps({"step": "restarted", "web.0": after}))
    step("the new run's first line in the log view", lambda d: any(
        f"web 0 started as {after}" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#log .text")))
    driver.save_screenshot(f"{shots}/dashboard.png")
    # A phone: nothing wider than the screen, every button still there.
    driver.set_window_size(390, 844)
    step("a phone's width without sideways scrolling", lambda d: d.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"))
    step("the restart buttons shown on a phone", lambda d: all(
        b.is_displayed() for b in d.find_elements(By.CSS_SELECTOR, 'button[data-verb="restart"]')))
    driver.save_screenshot(f"{shots}/dashboard-phone.png")
    pwned = driver.execute_script("return window.pwned === undefined ? null : window.pwned;")
    if pwned is not None:
        print(json.dumps({"failed": "a child's markup ran", "pwned": pwned}))
        sys.exit(1)
    print(json.dumps({"ok": True}))
finally:
    driver.quit()
