// Drives Debian's Chromium (headless) through Playwright over a running `vigil up --demo`, as a
// person would: the public status page (with and without JavaScript), the API docs, GraphiQL,
// and the dashboard (sign in, a live update, a monitor's page, pause and resume, an edit the
// API refuses). Every request to another origin is refused and fails the run, as does any
// console error or uncaught exception. Screenshots go to $SHOTS.
//
// Environment: BASE (http://127.0.0.1:PORT), KEY (an editor's API key), SHOTS (a folder),
// VIGIL_PLAYWRIGHT (the playwright-core package folder), VIGIL_CHROMIUM (the browser).

"use strict";

const path = require("path");
const { chromium } = require(process.env.VIGIL_PLAYWRIGHT);

const base = process.env.BASE;
const key = process.env.KEY;
const shots = process.env.SHOTS;
const origin = new URL(base).origin;
const problems = [];
// Set while the test sends a wrong key on purpose: the browser logs the API's 401.
let refusalExpected = false;
const step = (what) => console.log(`-- ${what}`);

function watch(context) {
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (!["data:", "blob:"].includes(url.protocol) && url.origin !== origin) {
      problems.push(`request to another origin: ${request.url()}`);
    }
  });
  context.on("page", (page) => {
    page.on("console", (message) => {
      const refusal = /status of 401/.test(message.text());
      if (message.type() === "error" && !(refusalExpected && refusal)) {
        problems.push(`console error on ${page.url()}: ${message.text()}`);
      }
    });
    page.on("pageerror", (error) => problems.push(`uncaught on ${page.url()}: ${error.message}`));
  });
}

async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  // Offline: nothing but this origin answers.
  await context.route((url) => url.origin !== origin, (route) => route.abort());
  watch(context);
  return context;
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function statusPage(browser) {
  step("status page without JavaScript");
  const plain = await newContext(browser, { javaScriptEnabled: false });
  const page = await plain.newPage();
  const response = await page.goto(`${base}/status/demo`);
  expect(response.status() === 200, `status page answered ${response.status()}`);
  expect(response.headers()["etag"], "status page without an ETag");
  expect((await page.locator("h1").innerText()) === "Vigil demo", "status page title");
  for (const name of ["Public API", "Search", "Checkout", "Reports", "DNS", "TLS endpoint"]) {
    await page.locator("li.component h4", { hasText: name }).first().waitFor();
  }
  const uptime = await page.locator("li.component .uptime").first().innerText();
  expect(/\d+(\.\d+)?% uptime over 90 days/.test(uptime), `uptime text: ${uptime}`);
  const points = Number(await page.locator("figure.rt svg").first().getAttribute("data-points"));
  expect(points >= 1, `response-time chart has ${points} points`);
  const html = await page.content();
  for (const hidden of ["demo-fast", "127.0.0.1:", "/hooks/"]) {
    expect(!html.includes(hidden), `status page shows ${hidden}`);
  }
  await shot(page, "status-page");
  await plain.close();
}

async function tools(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  step("API docs");
  await page.goto(`${base}/docs`);
  await page.locator(".swagger-ui .info .title", { hasText: "Vigil" }).waitFor({ timeout: 30000 });
  await page.locator(".opblock-tag", { hasText: "monitors" }).first().waitFor();
  await shot(page, "api-docs");
  step("GraphiQL");
  await page.goto(`${base}/graphql`);
  await page.locator(".graphiql-container").waitFor({ timeout: 30000 });
  await page.locator("text=Add your API key in the Headers tab").first().waitFor({ timeout: 30000 });
  await shot(page, "graphiql");
  await context.close();
}

/** The number of points of the p95 chart in monitor `id`'s row. */
async function sparkPoints(page, id) {
  return Number(await page.locator(`tr[data-monitor="${id}"] figure.chart`).getAttribute("data-points"));
}

async function dashboard(browser) {
  const context = await newContext(browser);
  const page = await context.newPage();
  step("dashboard: sign in");
  await page.goto(`${base}/ui/`);
  refusalExpected = true;
  await page.locator("#api-key").fill("not-a-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("form.sign-in .error").waitFor();
  refusalExpected = false;
  await page.locator("#api-key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  const row = page.locator('tr[data-monitor="demo-fast"]');
  await row.waitFor({ timeout: 30000 });
  expect((await row.locator("th a").innerText()).length > 0, "monitor name");
  expect(/%$/.test(await row.locator("td").nth(1).innerText()), "availability cell");
  await page.waitForFunction(() => document.getElementById("live-status").dataset.state === "live");

  step("dashboard: a window that closes appears without a reload");
  const before = await sparkPoints(page, "demo-fast");
  await page.waitForFunction(
    (n) => Number(document.querySelector('tr[data-monitor="demo-fast"] figure.chart').dataset.points) > n,
    before,
    { timeout: 60000 },
  );
  await shot(page, "dashboard");

  step("dashboard: a monitor's page");
  await page.locator('tr[data-monitor="demo-flaky"] th a').click();
  await page.waitForURL(/#\/monitors\/demo-flaky$/);
  await page.locator("figure.chart").first().waitFor();
  const charts = await page.locator(".charts figure.chart").evaluateAll((figures) =>
    figures.map((f) => [f.querySelector("figcaption").textContent, Number(f.dataset.points)]));
  for (const [title, n] of charts.slice(0, 3)) expect(n > 0, `${title} chart has no points`);
  await page.locator("table.mix").first().waitFor();
  await page.locator("ol.failed li .conditions").first().waitFor({ timeout: 60000 });
  await shot(page, "monitor");

  step("dashboard: pause and resume");
  const state = page.locator("#monitor-state [data-state]");
  await page.locator("#toggle", { hasText: "Pause" }).click();
  await page.locator("#monitor-state [data-state=paused]").waitFor();
  await page.reload();
  await page.locator("#monitor-state [data-state=paused]").waitFor();
  await page.locator("#toggle", { hasText: "Resume" }).click();
  await page.waitForFunction(() => document.querySelector("#monitor-state [data-state]").dataset.state !== "paused");
  expect((await state.getAttribute("data-state")) !== "paused", "still paused");

  step("dashboard: an edit the API refuses shows its message");
  await page.locator("#edit").click();
  const interval = await page.locator("#edit-interval").inputValue();
  await page.locator("#edit-interval").fill("soon");
  await page.getByRole("button", { name: "Save" }).click();
  const error = await page.locator("form.edit .errors .error").innerText();
  expect(/interval/.test(error), `edit error: ${error}`);
  await page.locator("#edit-name").fill("Demo flaky (edited)");
  await page.locator("#edit-interval").fill(interval);
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("h1", { hasText: "Demo flaky (edited)" }).waitFor();
  await context.close();
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.VIGIL_CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  let failed = null;
  try {
    await statusPage(browser);
    await tools(browser);
    await dashboard(browser);
  } catch (e) {
    failed = e;
  } finally {
    await browser.close();
  }
  if (failed) {
    console.error(`FAILED: ${failed.stack || failed}`);
  }
  for (const p of problems) console.error(`PROBLEM: ${p}`);
  process.exit(failed || problems.length > 0 ? 1 : 0);
})();
