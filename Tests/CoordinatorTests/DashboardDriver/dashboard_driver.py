"""Drives the FleetAdapt dashboard in a real headless Chromium (Debian's chromium and chromium-driver) through
selenium, against the coordinator that DashboardTests started. Usage: dashboard_driver.py CONFIG.json

The config names the coordinator, a file holding the API key (typed into the sign-in form, never put in a URL or an
environment), the devices and campaign the test created, and the agent command the driver starts once it has seen
the campaign at its starting point. Every wait is bounded. Screenshots go to `screenshot_dir` as PNG files and
their paths are printed. Prints "DASHBOARD OK" and exits 0 when every check passed; otherwise prints what failed,
keeps a screenshot of the page as it was, and exits 1.
"""
import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


class Check(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Check(message)


class Driver:
    def __init__(self, config):
        self.config = config
        self.shots = []
        self.console = []
        os.makedirs(config["screenshot_dir"], exist_ok=True)
        for name in os.listdir(config["screenshot_dir"]):
            if name.endswith(".png"):
                os.remove(os.path.join(config["screenshot_dir"], name))
        options = webdriver.ChromeOptions()
        options.binary_location = config["chromium"]
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                    "--disable-component-update", "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.browser = webdriver.Chrome(service=Service(executable_path=config["chromedriver"]), options=options)
        self.browser.set_page_load_timeout(30)
        self.wait = WebDriverWait(self.browser, 30)

    def shot(self, name):
        path = os.path.join(self.config["screenshot_dir"], name + ".png")
        self.browser.save_screenshot(path)
        self.shots.append(path)
        print(f"screenshot: {path}", flush=True)

    def collect_console(self):
        self.console += self.browser.get_log("browser")

    def css(self, selector):
        return self.browser.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector):
        # The campaign page re-renders while it polls, so an element found may be replaced before it is read.
        for _ in range(20):
            try:
                found = self.css(selector)
                return found[0].text if found else ""
            except StaleElementReferenceException:
                time.sleep(0.05)
        raise Check(f"{selector} kept changing under the reader")

    def click(self, selector):
        for _ in range(20):
            try:
                self.css(selector)[0].click()
                return
            except (StaleElementReferenceException, IndexError):
                time.sleep(0.1)
        raise Check(f"could not click {selector}")

    def until(self, what, condition, timeout=30):
        try:
            return WebDriverWait(self.browser, timeout, poll_frequency=0.2,
                                 ignored_exceptions=[StaleElementReferenceException, IndexError]).until(lambda _: condition())
        except TimeoutException:
            raise Check(f"timed out after {timeout} s waiting for {what}")

    def go(self, hash_):
        self.browser.execute_script("location.hash = arguments[0]", hash_)

    def no_alert(self):
        try:
            alert = self.browser.switch_to.alert
            text = alert.text
            alert.dismiss()
            raise Check(f"an alert opened: {text!r}")
        except NoAlertPresentException:
            pass

    def table_names(self):
        return [a.text for a in self.css("#devices tbody tr td:first-child a")]

    # ---- the walk ----------------------------------------------------------------------------------------------

    def run(self):
        c = self.config
        base = c["base_url"]
        with open(c["key_file"], encoding="utf-8") as f:
            key = f.read().strip()

        self.browser.get(base + "/ui")
        self.until("the sign-in form", lambda: self.css("#sign-in") and self.css("#sign-in")[0].is_displayed())
        self.shot("01-sign-in")

        # A wrong key is refused and nothing is kept.
        self.css("#api-key")[0].send_keys("not-a-key-0123456789")
        self.css("#sign-in-button")[0].click()
        self.until("the refusal", lambda: "failed" in self.text("#sign-in-error").lower())
        expect(self.css("#sign-in")[0].is_displayed(), "the sign-in form left after a wrong key")
        self.css("#api-key")[0].clear()

        self.css("#api-key")[0].send_keys(key)
        self.css("#sign-in-button")[0].click()
        self.until("the fleet table", lambda: len(self.css("#devices tbody tr[data-device-id]")) >= len(c["device_names"]))
        expect(self.browser.execute_script("return sessionStorage.getItem('fleetadapt.api-key')") == key, "the key is not in sessionStorage")
        expect(self.browser.execute_script("return localStorage.length") == 0, "something was written to localStorage")
        expect(key not in self.browser.current_url, "the key is in the URL")
        expect(self.css("#api-key")[0].get_attribute("value") == "", "the key stayed in the input")
        names = self.table_names()
        for name in c["device_names"]:
            expect(name in names, f"device {name!r} is not in the fleet table: {names}")

        # Values from the API are text: the label holding an <img onerror> and the name holding a <script> run nothing.
        row = self.css(f'#devices tr[data-device-id="{c["xss_device_id"]}"]')
        expect(len(row) == 1, "the device with markup in its name and label is not shown")
        expect(c["xss_label"] in row[0].text, f"the label is not shown as text: {row[0].text!r}")
        expect(len(self.css("#view img")) == 0 and len(self.css("#view script")) == 0, "markup from the API became elements")
        expect(self.browser.execute_script("return document.querySelectorAll('script:not([src])').length") == 0, "an inline script element was created")
        self.no_alert()
        self.shot("02-fleet")

        # Filters: labels and status.
        labels = self.css("#filter-labels")[0]
        labels.send_keys("fleet=ui")
        self.css("#filter-apply")[0].click()
        self.until("the label filter", lambda: "labels=fleet%3Dui" in self.browser.current_url
                   and len(self.css("#devices tbody tr[data-device-id]")) == c["fleet_ui_count"])
        expect(all(n.startswith("cam-") for n in self.table_names()), f"the filter let others through: {self.table_names()}")
        Select(self.css("#filter-status")[0]).select_by_value("decommissioned")
        self.css("#filter-apply")[0].click()
        self.until("the status filter", lambda: "status=decommissioned" in self.browser.current_url
                   and len(self.css("#devices tbody tr[data-device-id]")) == 0)

        # Paging with the cursor: two per page, every device once, and back again.
        self.go("#/fleet?limit=2")
        self.until("the first page", lambda: len(self.css("#devices tbody tr[data-device-id]")) == 2)
        first = self.table_names()
        seen = list(first)
        for _ in range(10):
            nxt = self.css("#page-next")[0]
            if not nxt.is_enabled():
                break
            before = self.table_names()
            nxt.click()
            self.until("the next page", lambda: self.table_names() != before and len(self.table_names()) > 0)
            seen += self.table_names()
        expect(sorted(seen) == sorted(c["device_names"]), f"paging showed {seen}, not every device once")
        self.shot("03-fleet-last-page")
        for _ in range(10):
            prev = self.css("#page-prev")[0]
            if not prev.is_enabled():
                break
            before = self.table_names()
            prev.click()
            self.until("the previous page", lambda: self.table_names() != before)
        expect(self.table_names() == first, f"Previous did not come back to the first page: {self.table_names()} vs {first}")

        # The campaign: open it from the list, see it at its start, start the agent, watch it progress.
        self.click("#nav-campaigns")
        self.until("the campaigns list", lambda: len(self.css(f'#campaigns tr[data-campaign-id="{c["campaign_id"]}"] a')) == 1)
        self.css(f'#campaigns tr[data-campaign-id="{c["campaign_id"]}"] a')[0].click()
        self.until("the campaign page", lambda: len(self.css("#campaign-progress")) == 1)
        start = self.text("#campaign-progress")
        expect(start.startswith("0 of 1 jobs done"), f"the campaign did not start at 0: {start!r}")
        expect(self.text("#campaign-status").startswith("running"), f"status {self.text('#campaign-status')!r}")
        expect(len(self.css("#waves tbody tr")) == 1, "the waves table is not shown")
        self.shot("04-campaign-before")
        log = open(c["agent_log"], "wb")
        agent = subprocess.Popen(c["agent_argv"], stdout=log, stderr=subprocess.STDOUT)
        try:
            states = [start]
            seen_states = set()
            deadline = time.time() + c["timeout_s"]
            while time.time() < deadline:
                text = self.text("#campaign-progress")
                if text and text != states[-1]:
                    states.append(text)
                seen_states.add(self.text("#jobs tbody tr td:nth-child(3)"))
                if text.startswith("1 of 1 jobs done"):
                    break
                if agent.poll() is not None and agent.returncode != 0:
                    raise Check(f"the agent exited with {agent.returncode}; see {c['agent_log']}")
                time.sleep(0.2)
            print(f"progress seen on the page: {states}; job states seen: {sorted(seen_states)}", flush=True)
            expect(states[-1].startswith("1 of 1 jobs done (100 %)"), f"the page never showed the job done: {states}")
            self.until("the job's accuracy", lambda: "→" in self.text("#jobs tbody tr td:nth-child(5)"))
            self.shot("05-campaign-after")
            agent.wait(timeout=60)
        finally:
            if agent.poll() is None:
                agent.terminate()
                agent.wait(timeout=10)
            log.close()

        # The device the agent ran: its config and its adaptation before → after.
        self.until("the campaign to finish", lambda: "Finished" in self.text("#campaign > p.muted"), timeout=60)
        self.click("#jobs tbody tr td:first-child a")
        self.until("the device page", lambda: len(self.css("#results tbody tr")) >= 1 and len(self.css("#combination")) == 1)
        combination = self.text("#combination")
        expect(len(combination.split("/")) == 3, f"the combination is {combination!r}")
        result = self.css("#results tbody tr")[0].text
        expect("succeeded" in result or "failed" in result, f"the result row is {result!r}")
        expect(result.count("→") == 2, f"accuracy and entropy before → after are not shown: {result!r}")
        self.shot("06-device")

        # The models page: the plot's ticks are the report's (PlotAxis), drawn as SVG.
        self.click("#nav-models")
        self.until("the plot", lambda: len(self.css("#plot svg.plot circle")) > 100)
        xs = [t.text for t in self.css("#plot svg text.x-tick")]
        ys = [t.text for t in self.css("#plot svg text.y-tick")]
        expect(xs == c["latency_tick_labels"], f"latency ticks {xs} differ from the report's {c['latency_tick_labels']}")
        expect(ys == c["accuracy_tick_labels"], f"accuracy ticks {ys} differ from the report's {c['accuracy_tick_labels']}")
        self.shot("07-models-latency")
        Select(self.css("#plot-x")[0]).select_by_value("size_mb")
        self.until("the size plot", lambda: "parameter size" in self.text("#plot svg text.title"))
        self.shot("08-models-size")

        # The audit log (admin): the registrations are there.
        self.click("#nav-audit")
        self.until("the audit log", lambda: any("POST /v1/devices" in r.text for r in self.css("#audit tbody tr")))
        self.shot("09-audit")

        # Unknown fragment paths fall back to the fleet; signing out forgets the key.
        self.click("#sign-out")
        self.until("the sign-in form again", lambda: self.css("#sign-in")[0].is_displayed())
        expect(self.browser.execute_script("return sessionStorage.getItem('fleetadapt.api-key')") is None, "the key survived signing out")
        self.no_alert()

        # No Content-Security-Policy violation during the walk. Then a control: an inline style injected now must
        # be refused and reported, which shows the console check sees violations.
        self.collect_console()
        violations = [e for e in self.console if "Content Security Policy" in e.get("message", "")]
        expect(violations == [], f"CSP violations reported: {violations}")
        self.browser.execute_script("const s = document.createElement('style'); s.textContent = 'body{background:red}'; document.head.appendChild(s);")
        time.sleep(0.5)
        control = [e for e in self.browser.get_log("browser") if "Content Security Policy" in e.get("message", "")]
        expect(control, "an injected inline style was not reported as a CSP violation: the console check sees nothing")
        others = [e["message"] for e in self.console if e.get("level") == "SEVERE"]
        print(f"console errors other than CSP (expected: the wrong key's 401): {others}", flush=True)

    def close(self):
        try:
            self.browser.quit()
        except Exception:
            pass


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    driver = Driver(config)
    try:
        driver.run()
    except Exception as error:
        print(f"DASHBOARD FAILED: {type(error).__name__}: {error}", flush=True)
        try:
            driver.shot("failure")
        except Exception:
            pass
        driver.close()
        return 1
    driver.close()
    print(f"DASHBOARD OK ({len(driver.shots)} screenshots in {config['screenshot_dir']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
