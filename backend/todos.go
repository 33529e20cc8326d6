package main

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"gatehouse.dev/backend/internal/todo"
	"gatehouse.dev/kit/httpx"
)

// respond writes t with status, or the client-safe form of err.
func respond(w http.ResponseWriter, r *http.Request, status int, t todo.Todo, err error) {
	if err != nil {
		httpx.WriteError(w, r, storeError(err))
		return
	}
	httpx.WriteRawJSON(w, status, append(t.AppendJSON(make([]byte, 0, 512)), '\n'))
}

// store returns the caller's view and a context bounded by timeout, so a
// database that hangs turns into a 503, not a stuck request.
func store(r *http.Request, todos *todo.Store, timeout time.Duration) (*todo.UserStore, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	return todos.ForUser(userIDFrom(r.Context())), ctx, cancel
}

func badQuery(msg string) error {
	return httpx.Errorf(http.StatusBadRequest, "INVALID_QUERY", msg)
}

// parseListOptions reads ?completed=, ?limit= and ?after=.
func parseListOptions(q url.Values) (todo.ListOptions, error) {
	var o todo.ListOptions
	if v, ok := q["completed"]; ok {
		b, err := strconv.ParseBool(v[0])
		if err != nil || (v[0] != "true" && v[0] != "false") {
			return o, badQuery("completed must be true or false.")
		}
		o.Completed = &b
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > todo.MaxLimit {
			return o, badQuery("limit must be an integer from 1 to 100.")
		}
		o.Limit = n
	}
	if v, ok := q["after"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 {
			return o, badQuery("after must be a todo id.")
		}
		o.After = n
	}
	return o, nil
}

func handleTodoList(todos *todo.Store, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := parseListOptions(r.URL.Query())
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		us, ctx, cancel := store(r, todos, timeout)
		defer cancel()
		list, more, err := us.List(ctx, o)
		if err != nil {
			httpx.WriteError(w, r, storeError(err))
			return
		}
		if more {
			w.Header().Set("Link", nextLink(o, list[len(list)-1].ID))
		}
		buf := listBuffers.Get().(*[]byte)
		*buf = append(todo.AppendJSONList((*buf)[:0], list), '\n')
		httpx.WriteRawJSON(w, http.StatusOK, *buf)
		if cap(*buf) <= maxPooledList {
			listBuffers.Put(buf)
		}
	})
}

// listBuffers holds the encoding buffers of list responses (a default page
// is about 7 KiB), reused once the response has been written.
var listBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooledList bounds what goes back into listBuffers: a page of 100 todos
// with 500-character titles is ~200 KiB; buffers beyond that are left to
// the garbage collector instead of being kept.
const maxPooledList = 64 << 10

// nextLink is the RFC 8288 link to the page after lastID, keeping filters.
func nextLink(o todo.ListOptions, lastID int64) string {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(lastID, 10))
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Completed != nil {
		q.Set("completed", strconv.FormatBool(*o.Completed))
	}
	return `</api/v1/todos?` + q.Encode() + `>; rel="next"`
}

type todoCreate struct {
	Title     optional[string] `json:"title"`
	Completed optional[bool]   `json:"completed"`
}

func handleTodoCreate(todos *todo.Store, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in todoCreate
		if err := decode(w, r, &in); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if !in.Title.Set {
			httpx.WriteError(w, r, httpx.Errorf(http.StatusBadRequest, "INVALID_TITLE", "Title is required."))
			return
		}
		title, err := todo.CleanTitle(in.Title.Val)
		if err != nil {
			httpx.WriteError(w, r, storeError(err))
			return
		}
		us, ctx, cancel := store(r, todos, timeout)
		defer cancel()
		t, err := us.Create(ctx, title, in.Completed.Val)
		if err == nil {
			w.Header().Set("Location", "/api/v1/todos/"+strconv.FormatInt(t.ID, 10))
		}
		respond(w, r, http.StatusCreated, t, err)
	})
}

// todoID parses the {id} path value: a positive int64, else 400.
func todoID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, httpx.Errorf(http.StatusBadRequest, "INVALID_ID", "Todo id must be a positive integer.")
	}
	return id, nil
}

func handleTodoGet(todos *todo.Store, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := todoID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		us, ctx, cancel := store(r, todos, timeout)
		defer cancel()
		t, err := us.Get(ctx, id)
		respond(w, r, http.StatusOK, t, err)
	})
}

type todoPatch struct {
	Title     optional[string] `json:"title"`
	Completed optional[bool]   `json:"completed"`
}

func handleTodoUpdate(todos *todo.Store, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := todoID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var in todoPatch
		if err := decode(w, r, &in); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var p todo.Patch
		if in.Title.Set {
			title, err := todo.CleanTitle(in.Title.Val)
			if err != nil {
				httpx.WriteError(w, r, storeError(err))
				return
			}
			p.Title = &title
		}
		if in.Completed.Set {
			p.Completed = &in.Completed.Val
		}
		if p.Title == nil && p.Completed == nil {
			httpx.WriteError(w, r, httpx.Errorf(http.StatusBadRequest, "EMPTY_PATCH", "Send title and/or completed to change."))
			return
		}
		us, ctx, cancel := store(r, todos, timeout)
		defer cancel()
		t, err := us.Update(ctx, id, p)
		respond(w, r, http.StatusOK, t, err)
	})
}

func handleTodoDelete(todos *todo.Store, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := todoID(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		us, ctx, cancel := store(r, todos, timeout)
		defer cancel()
		if err := us.Delete(ctx, id); err != nil {
			httpx.WriteError(w, r, storeError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
