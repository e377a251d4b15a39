// End to end, in the real app window: the installed (unpacked .deb) app under Xvfb,
// driven through tauri-driver and WebKitWebDriver, with the real core, the real
// sidecar (started by the bundled uv) and test-hub serving the test models.
// Every command and event of the provider is exercised; screenshots of each state go to
// docs/screenshots/. Run it through tools/app-e2e.sh, which prepares the environment.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Session } from "./webdriver.mjs";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through tools/app-e2e.sh`);
  return value;
};
const APP = env("LOCAL_MLX_APP_BIN");
const TEST_HUB = env("TEST_HUB_BIN");
const REPOS = env("FIXTURE_REPOS");
const TINY = env("FIXTURE_TINY");
const SMOL = env("FIXTURE_SMOL");
const SHOTS = env("SCREENSHOT_DIR");
const DRIVER_PORT = Number(process.env.TAURI_DRIVER_PORT ?? 4444);
const NATIVE_PORT = DRIVER_PORT + 1;
const FIRST_LOAD_MS = 15 * 60_000; // the first uv sync of a fresh environment

const tmp = mkdtempSync(join(tmpdir(), "local-mlx-app-e2e-"));
let hub;
let hubUrl;
let driver;
let wd;

// ---------- helpers ----------

const card = (id) => `li[data-model-id="${id}"]`;
const button = (id, label) => `//li[@data-model-id="${id}"]//button[normalize-space()="${label}"]`;

async function badge(id) {
  return (await wd.find(`${card(id)} [data-testid="status-badge"]`)).text();
}

async function waitBadge(id, label, timeoutMs = 60_000) {
  await wd.waitFor(`${id} to be "${label}"`, async () => (await badge(id)) === label, timeoutMs);
}

async function click(selector) {
  const element = await wd.find(selector);
  await scrollTo(element);
  await element.click();
}

async function scrollTo(element) {
  await wd.execute("arguments[0].scrollIntoView({block: 'center'})", { "element-6066-11e4-a52e-4f735466cecf": element.id });
}

async function scrollToSelector(selector) {
  await scrollTo(await wd.find(selector));
}

async function shot(name) {
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(SHOTS, name), await wd.screenshot());
}

/** Invoke a command through the window's own IPC, as the frontend does. */
async function invoke(cmd, args = {}) {
  const result = await wd.executeAsync(
    `const done = arguments[arguments.length - 1];
     window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])
       .then((value) => done({ ok: true, value }), (error) => done({ ok: false, error }));`,
    cmd,
    args,
  );
  return result;
}

async function hubFaults(faults) {
  const response = await fetch(`${hubUrl}/_test/faults`, {
    method: faults ? "POST" : "DELETE",
    headers: { "content-type": "application/json" },
    body: faults ? JSON.stringify(faults) : undefined,
  });
  assert.ok(response.ok, `test-hub faults: ${response.status}`);
}

async function hubStats() {
  return (await fetch(`${hubUrl}/_test/stats`)).json();
}

function bytesServedFor(stats, repo) {
  return Object.entries(stats.files)
    .filter(([key]) => key.includes(repo))
    .reduce((sum, [, f]) => sum + f.bytes_served, 0);
}

async function recordedEvents() {
  return wd.execute("return window.__e2eEvents || []");
}

async function startDriver(extraEnv = {}) {
  const childEnv = {
    ...process.env,
    HF_ENDPOINT: hubUrl,
    HF_HUB_CACHE: join(tmp, "hf-cache"),
    LOCAL_MLX_CONFIG_DIR: join(tmp, "config"),
    // A fresh Python environment, so the first load shows the environment sync.
    XDG_DATA_HOME: join(tmp, "data"),
    LOCAL_MLX_EXTRA_MODELS: `${TINY},${SMOL}`,
    LOCAL_MLX_LOG: "info,local_mlx=debug",
    ...extraEnv,
  };
  driver = spawn("tauri-driver", ["--port", String(DRIVER_PORT), "--native-port", String(NATIVE_PORT)], {
    env: childEnv,
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${DRIVER_PORT}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/status`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("tauri-driver did not start");
    await new Promise((r) => setTimeout(r, 200));
  }
  wd = await Session.create(base, { browserName: "wry", "tauri:options": { application: APP } });
  await wd.waitFor("the model list", async () => (await wd.findAll(card(TINY))).length === 1, 60_000);
}

/** Pids of the app under test: processes running exactly the unpacked binary. */
function appPids() {
  const target = realpathSync(APP);
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/exe`) === target;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Close the window as a user would (the app then exits and stops its sidecar), then
 * end the session and the driver; an app still running after that is killed. */
async function stopDriver() {
  if (wd) {
    await wd.cmd("DELETE", "/window").catch(() => {});
    const deadline = Date.now() + 15_000;
    while (appPids().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await wd.delete().catch(() => {});
  }
  wd = undefined;
  if (driver) {
    driver.kill("SIGTERM");
    await new Promise((r) => driver.once("exit", r));
  }
  driver = undefined;
  for (const pid of appPids()) {
    console.error(`the app (pid ${pid}) did not exit with its window; killing it`);
    process.kill(pid, "SIGKILL");
  }
}

// ---------- setup ----------

before(async () => {
  hub = spawn(TEST_HUB, ["--repos", REPOS, "--exit-on-stdin-close"], { stdio: ["pipe", "pipe", "inherit"] });
  hubUrl = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: hub.stdout });
    lines.on("line", (line) => {
      const match = /TEST_HUB_READY url=(\S+)/.exec(line);
      if (match) resolve(match[1]);
    });
    hub.once("exit", (code) => reject(new Error(`test-hub exited (${code}) before it was ready`)));
  });
  await startDriver();
  // Record every model state event the window receives, through the same IPC the
  // frontend's listener uses.
  await wd.executeAsync(`
    const done = arguments[arguments.length - 1];
    window.__e2eEvents = [];
    const t = window.__TAURI_INTERNALS__;
    const handler = t.transformCallback((e) => window.__e2eEvents.push({ at: Date.now(), ...e.payload }));
    t.invoke("plugin:event|listen", { event: "mlx-model-state-event", target: { kind: "Any" }, handler }).then(() => done(true));
  `);
});

after(async () => {
  await stopDriver();
  hub?.stdin.end();
  rmSync(tmp, { recursive: true, force: true });
});

// ---------- the tests, in order: each continues from the state the last one left ----------

test("the list shows the catalog and the test models, Not downloaded", async () => {
  for (const id of [TINY, SMOL, "mlx-community/Qwen3-1.7B-4bit"]) {
    assert.equal(await badge(id), "Not downloaded", id);
  }
  const text = await (await wd.find(card("mlx-community/Qwen3-1.7B-4bit"))).text();
  assert.match(text, /Recommended/);
  assert.match(text, /940 MB download · needs about 2\.0 GB of memory/);
  const status = await invoke("mlx_get_model_status", { modelId: TINY });
  assert.deepEqual([status.ok, status.value.state], [true, "not_downloaded"]);
  const providers = await (await wd.find("#post-process-provider")).text();
  assert.equal(providers.trim(), "Local (MLX)");
  await shot("01-model-list.png");
});

test("a custom model id is validated by the core and listed", async () => {
  const input = await wd.find("#custom-model");
  await scrollTo(input);
  await input.type("org/not a repo");
  await click("//form[contains(@class,'add-model')]//button[normalize-space()='Add']");
  const error = await wd.waitFor("the validation message", async () => {
    const alerts = await wd.findAll(".add-model [role=alert]");
    return alerts.length ? alerts[0].text() : null;
  });
  assert.match(error, /not a valid Hugging Face repo id/);
  await input.clear();
  await input.type("someone/custom-model");
  await click("//form[contains(@class,'add-model')]//button[normalize-space()='Add']");
  await wd.waitFor("the custom model's card", async () => (await wd.findAll(card("someone/custom-model"))).length === 1);
  assert.equal(await badge("someone/custom-model"), "Not downloaded");
});

test("a download shows progress moving and ends Downloaded", async () => {
  // 164 kB at 30 kB/s: about five seconds of progress to watch.
  await hubFaults([{ kind: "throttle", bytes_per_sec: 30_000, repo: TINY }]);
  await click(button(TINY, "Download"));
  const progress = `${card(TINY)} [data-testid="download-progress"]`;
  const value = async () => Number(await (await wd.find(`${progress} progress`)).property("value"));
  const first = await wd.waitFor("progress to start", async () => {
    const v = await value();
    return v > 0 && v < 60 ? v : null;
  });
  const later = await wd.waitFor("progress to move", async () => {
    const v = await value();
    return v > first ? v : null;
  });
  assert.ok(later > first);
  const text = await (await wd.find(`${progress} .progress-text`)).text();
  assert.match(text, /^\d+% · [\d.]+ [kM]?B of [\d.]+ [kM]?B · [\d.]+ [kM]?B\/s · \d+ (s|min \d+ s) left$/);
  await shot("02-downloading.png");
  await waitBadge(TINY, "Downloaded");
  await hubFaults(null);
  await shot("03-downloaded.png");
});

test("download progress arrives about ten times a second on one event channel", async () => {
  const events = (await recordedEvents()).filter((e) => e.model_id === TINY);
  const types = events.map((e) => e.event_type);
  assert.equal(types[0], "download_started");
  assert.equal(types.at(-1), "download_completed");
  const progress = events.filter((e) => e.event_type === "download_progress");
  const seconds = (progress.at(-1).at - progress[0].at) / 1000;
  const rate = (progress.length - 1) / seconds;
  assert.ok(rate > 4 && rate < 16, `${progress.length} progress events in ${seconds.toFixed(1)} s (${rate.toFixed(1)}/s)`);
  for (const e of progress) {
    assert.ok(e.progress >= 0 && e.progress <= 1 && e.total_bytes > 0 && e.downloaded_bytes <= e.total_bytes);
  }
});

test("Delete during a download is refused with the message visible", async () => {
  // 98 MB at 4 MB/s: long enough to try Delete and then Cancel.
  await hubFaults([{ kind: "throttle", bytes_per_sec: 4_000_000, repo: SMOL }]);
  await click(button(SMOL, "Download"));
  await waitBadge(SMOL, "Downloading");
  const del = await wd.find(button(SMOL, "Delete"));
  await scrollTo(del);
  assert.equal(await del.attribute("aria-disabled"), "true");
  await wd.hover(del);
  const reason = await (await wd.find(`${card(SMOL)} [role=tooltip]`)).text();
  assert.match(reason, /is downloading: deleting it is not possible now/);
  await del.click();
  const refusal = await wd.waitFor("the core's refusal", async () => {
    const notes = await wd.findAll(`${card(SMOL)} [data-testid="model-note"]`);
    return notes.length ? notes[0].text() : null;
  });
  assert.match(refusal, /downloading/);
  assert.equal(await badge(SMOL), "Downloading");
  await shot("04-delete-refused.png");
});

test("Cancel mid-download, then Download resumes from the kept bytes", async () => {
  await wd.waitFor("some bytes", async () => {
    const status = await invoke("mlx_get_model_status", { modelId: SMOL });
    return status.value.downloaded_bytes > 8_000_000;
  });
  await click(button(SMOL, "Cancel"));
  await waitBadge(SMOL, "Not downloaded", 10_000);
  const note = await (await wd.find(`${card(SMOL)} [data-testid="model-note"]`)).text();
  assert.match(note, /Download cancelled\. [\d.]+ MB are kept: Download resumes from there\./);
  const status = await invoke("mlx_get_model_status", { modelId: SMOL });
  const kept = status.value.partial_bytes;
  assert.ok(kept > 0, "partial bytes are kept");
  await shot("05-cancelled.png");

  await fetch(`${hubUrl}/_test/reset_stats`, { method: "POST" });
  await hubFaults([{ kind: "throttle", bytes_per_sec: 25_000_000, repo: SMOL }]);
  await click(button(SMOL, "Download"));
  await waitBadge(SMOL, "Downloaded", 120_000);
  await hubFaults(null);
  const served = bytesServedFor(await hubStats(), SMOL);
  assert.ok(served < 98_000_000 - kept / 2, `resumed: served ${served} bytes after keeping ${kept}`);
});

test("a failed download shows the error and Retry, which succeeds", async () => {
  await click(button(TINY, "Delete"));
  await waitBadge(TINY, "Not downloaded");
  // Every file request fails until the faults are cleared: all three attempts fail.
  await hubFaults([{ kind: "status", status: 503, repo: TINY, route: "resolve" }]);
  await click(button(TINY, "Download"));
  const error = await wd.waitFor(
    "the failure",
    async () => {
      const notes = await wd.findAll(`${card(TINY)} [data-testid="model-note"]`);
      return notes.length ? notes[0].text() : null;
    },
    120_000,
  );
  assert.match(error, /failed after 3 attempts/);
  await shot("06-download-failed.png");
  await hubFaults(null);
  await click(button(TINY, "Retry (up to 3 attempts)"));
  await waitBadge(TINY, "Downloaded", 60_000);
});

test("selecting a model pre-warms it: environment sync, server start, model load", async () => {
  await click(button(TINY, "Select"));
  await wd.waitFor("the loading indicator", async () => (await wd.findAll('[data-testid="loading-banner"]')).length === 1);
  await scrollToSelector('[data-testid="loading-banner"]');
  await shot("07-loading.png");
  await waitBadge(TINY, "Ready", FIRST_LOAD_MS);
  const phases = (await recordedEvents())
    .filter((e) => e.event_type === "loading_started" && e.phase)
    .map((e) => e.phase);
  assert.deepEqual(
    phases.filter((p, i) => p !== phases[i - 1]),
    ["syncing_environment", "starting_server", "loading_model"],
  );
  // The sidecar runs under the uv shipped in the package, from the package's python-backend.
  const processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
  const bundledUv = join(APP, "..", "uv");
  assert.ok(processes.includes(`${bundledUv} run`), `a process of ${bundledUv}:\n${processes}`);
  assert.match(processes, /lib\/local-mlx\/python-backend\/server\.py/);
  await scrollToSelector(card(TINY));
  await shot("08-ready.png");
});

test("Try it returns text with its time and token count", async () => {
  // The real instruct model, for readable text.
  await click(button(SMOL, "Select"));
  await waitBadge(SMOL, "Ready", 300_000);
  assert.equal(await badge(TINY), "Downloaded", "switching models unloads the old one");
  const transcript = await wd.find("#transcript");
  await scrollTo(transcript);
  await transcript.clear();
  await transcript.type("um so i think we should uh meet tomorrow");
  await click("//button[normalize-space()='Enhance']");
  const meta = await wd.waitFor(
    "the result",
    async () => {
      const found = await wd.findAll('[data-testid="try-meta"]');
      return found.length ? found[0].text() : null;
    },
    300_000,
  );
  assert.match(meta, new RegExp(`by ${SMOL} in [\\d.]+ (ms|s).* · \\d+ tokens generated`));
  const text = await (await wd.find('[data-testid="try-result"] output')).text();
  assert.match(text, /meet tomorrow/i, "the cleaned text keeps the speaker's words");
  await scrollToSelector('[data-testid="try-result"]');
  await shot("09-try-it.png");

  // The provider's own command: the transcript in, the text out.
  const plain = await invoke("mlx_process_text", { prompt: "uh hello there" });
  assert.equal(plain.ok, true, JSON.stringify(plain));
  assert.equal(typeof plain.value, "string");
  assert.ok(plain.value.length > 0);
});

test("settings: unload timeout, prompt, provider and the post-processing switch", async () => {
  const select = await wd.find("#unload-timeout");
  await scrollTo(select);
  await click("//select[@id='unload-timeout']/option[@value='hour1']");
  await wd.waitFor("the saved timeout", async () => {
    const settings = await invoke("mlx_get_settings");
    return settings.value.model_unload_timeout === "hour1";
  });
  const prompt = await wd.find("#prompt");
  await scrollTo(prompt);
  await prompt.clear();
  await prompt.type("Fix punctuation only. Reply with the text.\n\n${output}");
  await click("//button[normalize-space()='Save prompt']");
  await wd.waitFor("the saved prompt", async () => {
    const settings = await invoke("mlx_get_settings");
    return settings.value.prompt.startsWith("Fix punctuation only.");
  });
  await shot("10-prompt.png");
  await click("//button[normalize-space()='Reset to default']");

  const refused = await invoke("set_post_process_provider", { providerId: "openai" });
  assert.deepEqual([refused.ok, refused.error.kind], [false, "invalid_request"]);
  const kept = await invoke("set_post_process_provider", { providerId: "local-mlx" });
  assert.equal(kept.ok, true);

  await click("#post-process-enabled");
  await wd.waitFor("the off note", async () => (await wd.findAll(".off-note")).length === 1);
  assert.equal((await wd.findAll('ul[aria-label="Models"]')).length, 0);
  await click("#post-process-enabled");
  await wd.waitFor("the model list again", async () => (await wd.findAll(card(SMOL))).length === 1);
});

test("Unload frees the model: Ready returns to Downloaded", async () => {
  await waitBadge(SMOL, "Ready");
  await click(button(SMOL, "Unload"));
  await waitBadge(SMOL, "Downloaded");
});

test("Delete returns the model to Not downloaded", async () => {
  await click(button(TINY, "Delete"));
  await waitBadge(TINY, "Not downloaded");
  const note = await (await wd.find(`${card(TINY)} [data-testid="model-note"]`)).text();
  assert.equal(note, "Deleted.");
  await scrollToSelector(card(TINY));
  await shot("11-deleted.png");
});

test("every event type of the provider reached the window", async () => {
  const types = new Set((await recordedEvents()).map((e) => e.event_type));
  for (const type of [
    "download_started",
    "download_progress",
    "download_completed",
    "loading_started",
    "loading_completed",
    "unloaded",
    "error",
  ]) {
    assert.ok(types.has(type), `${type} was seen (saw ${[...types].join(", ")})`);
  }
});

test("closing the window exits the app and stops its sidecar", async () => {
  await waitBadge(SMOL, "Downloaded");
  await wd.executeAsync(`
    const done = arguments[arguments.length - 1];
    window.__TAURI_INTERNALS__.invoke("mlx_warm_up").then(() => done(true), (e) => done(e));
  `);
  const bundledUv = join(APP, "..", "uv");
  assert.match(execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }), new RegExp(`${bundledUv} run`));
  await stopDriver();
  assert.deepEqual(appPids(), []);
  const deadline = Date.now() + 10_000;
  let processes;
  do {
    processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    if (!processes.includes(`${bundledUv} run`)) break;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  assert.ok(!processes.includes(`${bundledUv} run`), "the sidecar outlived the app");
});

test("dark mode follows the system theme", async () => {
  await startDriver({ GTK_THEME: "Adwaita:dark" });
  const background = await wd.execute("return getComputedStyle(document.body.parentElement).backgroundColor");
  assert.equal(background, "rgb(28, 28, 30)");
  await shot("12-dark.png");
});
