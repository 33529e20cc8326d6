// Gatehouse demo frontend. Plain script, no build step, no framework.
//
// Rules this file keeps, because the Content-Security-Policy and the threat
// model depend on them:
//   - User data reaches the DOM only through textContent and attributes set
//     with setAttribute/dataset: never innerHTML, never eval.
//   - Tokens are never read or stored. authsvc sets HttpOnly cookies (the
//     session on Path=/, the access JWT on Path=/api) and the browser sends
//     them; fetch uses credentials: "same-origin".
//   - fetch keeps its default "cors" mode, so unsafe requests always carry
//     the page's real Origin, which the proxy and authsvc check.
"use strict";

(() => {
  const el = (id) => document.getElementById(id);
  const ui = {
    error: el("error"),
    status: el("status"),
    account: el("account"),
    whoami: el("whoami"),
    whoamiName: el("whoami-name"),
    signout: el("signout"),
    signedOut: el("signed-out"),
    signedIn: el("signed-in"),
    signupForm: el("signup-form"),
    signinForm: el("signin-form"),
    todoForm: el("todo-form"),
    todoList: el("todo-list"),
    empty: el("empty"),
  };

  // The most pages loadTodos follows, so a misbehaving Link header cannot
  // loop forever.
  const MAX_PAGES = 100;

  // APIError is a failed call with the server's {code, message}.
  class APIError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter; // seconds, or null
    }
  }

  // SignedOutError means the session is gone; the signed-out view is shown.
  class SignedOutError extends Error {}

  // send performs one request. A JSON body is always sent with
  // Content-Type: application/json (the backend answers 415 otherwise).
  async function send(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      return await fetch(path, init);
    } catch {
      throw new APIError(0, "NETWORK_ERROR", "Cannot reach the server. Check your connection and try again.", null);
    }
  }

  // retryAfterSeconds reads Retry-After (delta-seconds or an HTTP date), or
  // X-Retry-After, which the proxy also sends.
  function retryAfterSeconds(resp) {
    const raw = resp.headers.get("Retry-After") || resp.headers.get("X-Retry-After");
    if (!raw) return null;
    if (/^\d+$/.test(raw.trim())) return Math.max(1, parseInt(raw, 10));
    const at = Date.parse(raw);
    return Number.isNaN(at) ? null : Math.max(1, Math.ceil((at - Date.now()) / 1000));
  }

  // failure turns a non-2xx response into an APIError carrying the body's
  // message (SPEC.md: every error body is {"code","message"}).
  async function failure(resp) {
    let code = "HTTP_" + resp.status;
    let message = "";
    try {
      const body = await resp.json();
      if (body && typeof body === "object") {
        if (typeof body.code === "string") code = body.code;
        if (typeof body.message === "string") message = body.message;
      }
    } catch {
      // Not JSON (an HTML page from something in between): use the status.
    }
    if (!message) message = "The server answered " + resp.status + ". Please try again.";
    return new APIError(resp.status, code, message, retryAfterSeconds(resp));
  }

  // json reads a 2xx body, or throws the error it describes.
  async function json(resp) {
    if (!resp.ok) throw await failure(resp);
    if (resp.status === 204) return null;
    return resp.json();
  }

  // getSession asks authsvc who we are: the user, or null when signed out.
  // With a live session it also re-issues the access-token cookie, which is
  // how an expired access token is refreshed.
  async function getSession() {
    const data = await json(await send("GET", "/api/auth/get-session"));
    return data && data.user ? data.user : null;
  }

  // refreshing de-duplicates refreshes: several calls that fail with 401 at
  // once share one get-session request.
  let refreshing = null;
  function refreshSession() {
    if (!refreshing) {
      refreshing = getSession().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  // api calls the todo API. On 401 — the access cookie expired (the browser
  // drops it after Max-Age, so the proxy sees no token) or was rejected
  // (WWW-Authenticate: error="invalid_token") — it refreshes the session once
  // and retries once. Retrying a POST is safe: a 401 comes from the proxy,
  // before the backend saw the request. No session: the signed-out view.
  async function api(method, path, body) {
    let resp = await send(method, path, body);
    if (resp.status !== 401) return resp;
    const user = await refreshSession();
    if (user) {
      resp = await send(method, path, body);
      if (resp.status !== 401) return resp;
    }
    showSignedOut();
    showError("Your session has ended. Please sign in again.");
    throw new SignedOutError();
  }

  // ---- messages ----

  function showError(message) {
    ui.error.textContent = message;
  }

  function clearMessages() {
    ui.error.textContent = "";
    ui.status.textContent = "";
  }

  function showStatus(message) {
    ui.status.textContent = message;
  }

  // report shows what went wrong in words a person can act on.
  function report(err) {
    if (err instanceof SignedOutError) return; // already explained
    if (err instanceof APIError) {
      if (err.status === 429) {
        const n = err.retryAfter;
        showError(n ? "Too many attempts, try again in " + n + (n === 1 ? " second." : " seconds.") : "Too many attempts, try again later.");
        return;
      }
      showError(err.message);
      return;
    }
    console.error(err);
    showError("Something went wrong. Please reload the page.");
  }

  // busy disables a form's controls while its request is in flight, so a
  // double click cannot create two todos or sign in twice.
  async function busy(form, fn) {
    const controls = form.querySelectorAll("input, button");
    form.setAttribute("aria-busy", "true");
    controls.forEach((c) => { c.disabled = true; });
    try {
      return await fn();
    } finally {
      controls.forEach((c) => { c.disabled = false; });
      form.removeAttribute("aria-busy");
    }
  }

  // ---- views ----

  function showSignedOut() {
    ui.account.hidden = true;
    ui.signedIn.hidden = true;
    ui.signedOut.hidden = false;
    ui.whoami.textContent = "";
    ui.whoamiName.textContent = "";
    ui.todoList.replaceChildren(); // nothing of the last user lingers in the DOM
    ui.empty.hidden = true;
  }

  function showSignedIn(user) {
    ui.whoamiName.textContent = user.name || "";
    ui.whoami.textContent = user.email || "";
    ui.signedOut.hidden = true;
    ui.account.hidden = false;
    ui.signedIn.hidden = false;
  }

  function updateEmpty() {
    ui.empty.hidden = ui.todoList.children.length > 0;
  }

  // todoItem builds one <li data-id> for a todo; all text via textContent.
  function todoItem(todo) {
    const li = document.createElement("li");
    li.dataset.id = String(todo.id);
    li.dataset.testid = "todo";

    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "todo-" + todo.id;
    box.addEventListener("change", () => toggleTodo(li, box));

    const label = document.createElement("label");
    label.className = "title";
    label.htmlFor = box.id;
    label.textContent = todo.title;

    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete";
    del.textContent = "Delete";
    del.setAttribute("aria-label", "Delete: " + todo.title);
    del.addEventListener("click", () => deleteTodo(li, del));

    li.append(box, label, del);
    setTodo(li, todo);
    return li;
  }

  // setTodo updates an item in place, so focus stays where it was.
  function setTodo(li, todo) {
    const box = li.querySelector("input[type=checkbox]");
    box.checked = Boolean(todo.completed);
    li.classList.toggle("done", Boolean(todo.completed));
    li.querySelector(".title").textContent = todo.title;
    li.querySelector("button.delete").setAttribute("aria-label", "Delete: " + todo.title);
  }

  // nextLink returns the same-origin path of a Link rel="next", or null.
  function nextLink(resp) {
    const header = resp.headers.get("Link");
    if (!header) return null;
    for (const part of header.split(",")) {
      const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
      if (!m || !/(^|;)\s*rel="?next"?\s*(;|$)/i.test(m[2])) continue;
      const url = new URL(m[1], window.location.href);
      if (url.origin !== window.location.origin) return null; // never follow elsewhere
      return url.pathname + url.search;
    }
    return null;
  }

  // loadTodos fetches every page, oldest first, and renders the list.
  async function loadTodos() {
    const todos = [];
    let path = "/api/v1/todos?limit=100";
    for (let page = 0; path && page < MAX_PAGES; page++) {
      const resp = await api("GET", path);
      const batch = await json(resp);
      if (!Array.isArray(batch)) throw new APIError(resp.status, "BAD_RESPONSE", "The server sent an unexpected answer.", null);
      todos.push(...batch);
      path = nextLink(resp);
    }
    ui.todoList.replaceChildren(...todos.map(todoItem));
    updateEmpty();
  }

  // ---- actions ----

  // signedIn shows the user's page. The add form stays disabled until the
  // first list has arrived: a todo added meanwhile would be wiped from the
  // page when that (older) list replaced it.
  async function signedIn(user) {
    showSignedIn(user);
    await busy(ui.todoForm, loadTodos);
  }

  async function onSignUp(event) {
    event.preventDefault();
    clearMessages();
    const f = ui.signupForm.elements;
    await busy(ui.signupForm, async () => {
      try {
        const resp = await send("POST", "/api/auth/sign-up/email", {
          name: f.name.value.trim(),
          email: f.email.value.trim(),
          password: f.password.value,
        });
        const data = await json(resp);
        ui.signupForm.reset();
        ui.signinForm.reset();
        await signedIn(data.user);
      } catch (err) {
        f.password.value = "";
        report(err);
      }
    });
  }

  async function onSignIn(event) {
    event.preventDefault();
    clearMessages();
    const f = ui.signinForm.elements;
    await busy(ui.signinForm, async () => {
      try {
        const resp = await send("POST", "/api/auth/sign-in/email", {
          email: f.email.value.trim(),
          password: f.password.value,
        });
        const data = await json(resp);
        ui.signinForm.reset();
        ui.signupForm.reset();
        await signedIn(data.user);
      } catch (err) {
        f.password.value = "";
        report(err);
      }
    });
  }

  async function onSignOut() {
    clearMessages();
    ui.signout.disabled = true;
    try {
      // An empty JSON object: Better Auth's client sends one, and authsvc
      // accepts it or no body at all.
      await json(await send("POST", "/api/auth/sign-out", {}));
      showSignedOut();
      showStatus("Signed out.");
      ui.signinForm.elements.email.focus();
    } catch (err) {
      report(err); // still signed in: say so rather than pretend
    } finally {
      ui.signout.disabled = false;
    }
  }

  async function onAddTodo(event) {
    event.preventDefault();
    clearMessages();
    const input = ui.todoForm.elements.title;
    await busy(ui.todoForm, async () => {
      try {
        const todo = await json(await api("POST", "/api/v1/todos", { title: input.value }));
        ui.todoList.append(todoItem(todo));
        updateEmpty();
        ui.todoForm.reset();
      } catch (err) {
        report(err);
      }
    });
    if (!ui.signedIn.hidden) input.focus();
  }

  async function toggleTodo(li, box) {
    clearMessages();
    const want = box.checked;
    box.disabled = true;
    try {
      const todo = await json(await api("PATCH", "/api/v1/todos/" + encodeURIComponent(li.dataset.id), { completed: want }));
      setTodo(li, todo);
    } catch (err) {
      box.checked = !want;
      report(err);
    } finally {
      box.disabled = false;
    }
  }

  async function deleteTodo(li, button) {
    clearMessages();
    button.disabled = true;
    try {
      const resp = await api("DELETE", "/api/v1/todos/" + encodeURIComponent(li.dataset.id));
      if (resp.status !== 404) await json(resp); // 404: already gone, which is what we wanted
      const next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      updateEmpty();
      // Keep keyboard users in the list rather than dropping focus to <body>.
      (next ? next.querySelector("button.delete") : ui.todoForm.elements.title).focus();
    } catch (err) {
      button.disabled = false;
      report(err);
    }
  }

  async function start() {
    ui.signupForm.addEventListener("submit", onSignUp);
    ui.signinForm.addEventListener("submit", onSignIn);
    ui.signout.addEventListener("click", onSignOut);
    ui.todoForm.addEventListener("submit", onAddTodo);
    try {
      const user = await getSession();
      ui.status.textContent = "";
      if (user) {
        await signedIn(user);
      } else {
        showSignedOut();
      }
    } catch (err) {
      ui.status.textContent = "";
      if (ui.signedIn.hidden) showSignedOut();
      report(err);
    }
  }

  start();
})();
