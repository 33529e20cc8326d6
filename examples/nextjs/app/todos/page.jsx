"use client";
// The protected page: without a session it sends you to sign in. Every call
// goes to /api/v1/todos on this origin; the proxy turns the HttpOnly access
// cookie into X-User-ID for the backend (Go or FastAPI, same JSON).
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useRef, useState } from "react";
import { SessionExpiredError, todos } from "../../lib/api";
import { useAuth } from "../auth-provider";

export default function TodosPage() {
  const router = useRouter();
  const { user, isPending, signOut } = useAuth();
  const [items, setItems] = useState(null);
  const [error, setError] = useState("");
  const signingOut = useRef(false); // the session goes null before our own redirect

  const run = useCallback(
    async (fn) => {
      try {
        setError("");
        return await fn();
      } catch (e) {
        if (e instanceof SessionExpiredError) {
          router.replace("/sign-in?expired=1");
          return undefined;
        }
        setError(e.message);
        return undefined;
      }
    },
    [router],
  );

  useEffect(() => {
    if (isPending) return;
    if (!user) {
      if (!signingOut.current) router.replace("/sign-in");
      return;
    }
    run(todos.list).then((list) => list && setItems(list));
  }, [isPending, user, router, run]);

  async function add(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const title = new FormData(form).get("title");
    const created = await run(() => todos.add(title));
    if (created) {
      setItems((xs) => [...(xs ?? []), created]);
      form.reset();
    }
  }

  async function toggle(t) {
    const updated = await run(() => todos.setCompleted(t.id, !t.completed));
    if (updated) setItems((xs) => xs.map((x) => (x.id === t.id ? updated : x)));
  }

  async function remove(t) {
    const done = await run(() => todos.remove(t.id));
    if (done !== undefined) setItems((xs) => xs.filter((x) => x.id !== t.id));
  }

  async function onSignOut() {
    signingOut.current = true;
    await signOut();
    router.replace("/sign-in?signedOut=1");
  }

  if (isPending || !user) return <p>Loading…</p>;
  return (
    <>
      <header>
        <h1>{user.name}&apos;s todos</h1>
        <button onClick={onSignOut}>Sign out</button>
      </header>
      {error && <p role="alert" className="error">{error}</p>}
      <form className="inline" onSubmit={add}>
        <input name="title" type="text" placeholder="What needs doing?" maxLength={500} required />
        <button type="submit">Add</button>
      </form>
      {items === null ? (
        <p>Loading…</p>
      ) : items.length === 0 ? (
        <p className="empty">Nothing to do.</p>
      ) : (
        <ul className="todos">
          {items.map((t) => (
            <li key={t.id} className={t.completed ? "done" : ""} data-id={t.id}>
              <input type="checkbox" checked={t.completed} onChange={() => toggle(t)} aria-label={`Done: ${t.title}`} />
              <span>{t.title}</span>
              <button onClick={() => remove(t)} aria-label={`Delete ${t.title}`}>×</button>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
