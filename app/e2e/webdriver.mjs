// A small W3C WebDriver client: just the calls the end-to-end test needs, over fetch,
// against tauri-driver (which hands them to Debian's WebKitWebDriver).
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  static async create(base, capabilities) {
    const value = await call(base, "POST", "/session", { capabilities: { alwaysMatch: capabilities } });
    return new Session(base, value.sessionId);
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  async delete() {
    await this.cmd("DELETE", "");
  }

  /** Run `script` (a function body) in the page; `arguments` holds `args`. */
  execute(script, ...args) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  /** Run `script` in the page; it ends by calling `arguments[arguments.length - 1](value)`. */
  executeAsync(script, ...args) {
    return this.cmd("POST", "/execute/async", { script, args });
  }

  /** The first element matching a CSS selector, or an XPath when it starts with `/`. */
  async find(selector) {
    const value = await this.cmd("POST", "/element", locator(selector));
    return new Element(this, value[ELEMENT]);
  }

  async findAll(selector) {
    const values = await this.cmd("POST", "/elements", locator(selector));
    return values.map((v) => new Element(this, v[ELEMENT]));
  }

  async screenshot() {
    return Buffer.from(await this.cmd("GET", "/screenshot"), "base64");
  }

  /** Move the pointer onto an element (to show a hover tooltip). */
  async hover(element) {
    await this.cmd("POST", "/actions", {
      actions: [
        {
          type: "pointer",
          id: "mouse",
          parameters: { pointerType: "mouse" },
          actions: [{ type: "pointerMove", origin: { [ELEMENT]: element.id }, x: 0, y: 0, duration: 0 }],
        },
      ],
    });
  }

  /** Poll `check` until it returns a truthy value or `timeoutMs` passes. */
  async waitFor(what, check, timeoutMs = 30_000, intervalMs = 200) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        const value = await check();
        if (value) return value;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

export class Element {
  constructor(session, id) {
    this.session = session;
    this.id = id;
  }

  cmd(method, path, body) {
    return this.session.cmd(method, `/element/${this.id}${path}`, body);
  }

  click() {
    return this.cmd("POST", "/click", {});
  }

  text() {
    return this.cmd("GET", "/text");
  }

  attribute(name) {
    return this.cmd("GET", `/attribute/${name}`);
  }

  property(name) {
    return this.cmd("GET", `/property/${name}`);
  }

  enabled() {
    return this.cmd("GET", "/enabled");
  }

  clear() {
    return this.cmd("POST", "/clear", {});
  }

  type(text) {
    return this.cmd("POST", "/value", { text });
  }

  async find(selector) {
    const value = await this.cmd("POST", "/element", locator(selector));
    return new Element(this.session, value[ELEMENT]);
  }
}

function locator(selector) {
  return selector.startsWith("/") || selector.startsWith("./")
    ? { using: "xpath", value: selector }
    : { using: "css selector", value: selector };
}

async function call(base, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const v = json.value ?? {};
    throw new Error(`WebDriver ${method} ${path}: ${response.status} ${v.error ?? ""} ${v.message ?? JSON.stringify(json)}`);
  }
  return json.value;
}
