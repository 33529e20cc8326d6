package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse.dev/backend/internal/todo/migrations"
	"gatehouse.dev/kit/httpx"
	"gatehouse.dev/kit/pgdb"
	"gatehouse.dev/kit/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// apiClient talks to one backend as one user.
type apiClient struct {
	t    *testing.T
	base string
	user string
}

// newAPI serves the real handler stack over a fresh database.
func newAPI(t *testing.T) string {
	t.Helper()
	db, err := pgdb.Open(testenv.Database(t), pgdb.Options{MaxOpenConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := pgdb.Migrate(context.Background(), db, migrations.FS, "backend", zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newServer(zap.NewNop(), httpx.NewMetrics("test"), newDeps(db, pgdb.NewHot(db, true, zap.NewNop()), 5*time.Second)))
	t.Cleanup(srv.Close)
	return srv.URL
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (c apiClient) do(method, path, contentType, body string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.Header.Set("X-User-ID", c.user)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (c apiClient) req(method, path, body string) response {
	c.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return c.do(method, path, ct, body)
}

type wireTodo struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
	UserID    string `json:"user_id"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func (c apiClient) create(title string) wireTodo {
	c.t.Helper()
	r := c.req("POST", "/api/v1/todos", fmt.Sprintf(`{"title":%q}`, title))
	if r.status != http.StatusCreated {
		c.t.Fatalf("create: %d %s", r.status, r.body)
	}
	var td wireTodo
	r.json(c.t, &td)
	return td
}

var rfc3339Millis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestTodoCRUD(t *testing.T) {
	t.Parallel()
	alice := apiClient{t, newAPI(t), "alice"}

	r := alice.req("POST", "/api/v1/todos", `{"title":"  milk  ","completed":false}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST = %d %s, want 201", r.status, r.body)
	}
	var td wireTodo
	r.json(t, &td)
	if td.ID == 0 || td.Title != "milk" || td.Completed || td.UserID != "alice" {
		t.Errorf("created %+v", td)
	}
	if !rfc3339Millis.MatchString(td.CreatedAt) || !rfc3339Millis.MatchString(td.UpdatedAt) {
		t.Errorf("times %q %q are not RFC 3339 UTC with milliseconds", td.CreatedAt, td.UpdatedAt)
	}
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/api/v1/todos/%d", td.ID) {
		t.Errorf("Location = %q", loc)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	path := fmt.Sprintf("/api/v1/todos/%d", td.ID)

	for _, p := range []string{path, path + "/"} {
		if r := alice.req("GET", p, ""); r.status != http.StatusOK {
			t.Errorf("GET %s = %d %s", p, r.status, r.body)
		}
	}
	r = alice.req("PATCH", path, `{"completed":true}`)
	var patched wireTodo
	r.json(t, &patched)
	if r.status != http.StatusOK || !patched.Completed || patched.Title != "milk" {
		t.Errorf("PATCH completed = %d %s", r.status, r.body)
	}
	r = alice.req("PATCH", path+"/", `{"title":"oat milk"}`)
	r.json(t, &patched)
	if r.status != http.StatusOK || !patched.Completed || patched.Title != "oat milk" {
		t.Errorf("PATCH title = %d %s", r.status, r.body)
	}
	for _, p := range []string{"/api/v1/todos", "/api/v1/todos/"} {
		var list []wireTodo
		r = alice.req("GET", p, "")
		r.json(t, &list)
		if r.status != http.StatusOK || len(list) != 1 || list[0].Title != "oat milk" {
			t.Errorf("GET %s = %d %s", p, r.status, r.body)
		}
	}
	if r = alice.req("DELETE", path, ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("DELETE = %d %q, want 204 with no body", r.status, r.body)
	}
	if r = alice.req("GET", path, ""); r.status != http.StatusNotFound {
		t.Errorf("GET after delete = %d", r.status)
	}
	if r = alice.req("DELETE", path, ""); r.status != http.StatusNotFound {
		t.Errorf("second DELETE = %d", r.status)
	}
	if r = alice.req("GET", "/api/v1/todos", ""); string(r.body) != "[]\n" {
		t.Errorf("empty list body = %q, want []", r.body)
	}
}

// errorCase is a request that must fail with status and code.
type errorCase struct {
	name, method, path, ctype, body string
	status                          int
	code                            string
}

func TestTodoValidation(t *testing.T) {
	t.Parallel()
	base := newAPI(t)
	alice := apiClient{t, base, "alice"}
	td := alice.create("milk")
	one := fmt.Sprintf("/api/v1/todos/%d", td.ID)
	const js = "application/json"
	cases := []errorCase{
		{"bad JSON", "POST", "/api/v1/todos", js, `{"title":`, 400, "INVALID_JSON"},
		{"not an object", "POST", "/api/v1/todos", js, `["milk"]`, 400, "INVALID_JSON"},
		{"empty body", "POST", "/api/v1/todos", js, ``, 400, "INVALID_JSON"},
		{"trailing data", "POST", "/api/v1/todos", js, `{"title":"a"}{"title":"b"}`, 400, "INVALID_JSON"},
		{"unknown field", "POST", "/api/v1/todos", js, `{"title":"a","user_id":"bob"}`, 400, "UNKNOWN_FIELD"},
		{"title wrong type", "POST", "/api/v1/todos", js, `{"title":5}`, 400, "INVALID_TYPE"},
		{"completed wrong type", "POST", "/api/v1/todos", js, `{"title":"a","completed":"yes"}`, 400, "INVALID_TYPE"},
		{"title null", "POST", "/api/v1/todos", js, `{"title":null}`, 400, "INVALID_TYPE"},
		{"missing title", "POST", "/api/v1/todos", js, `{"completed":true}`, 400, "INVALID_TITLE"},
		{"empty title", "POST", "/api/v1/todos", js, `{"title":""}`, 400, "INVALID_TITLE"},
		{"whitespace title", "POST", "/api/v1/todos", js, `{"title":"  \t\n "}`, 400, "INVALID_TITLE"},
		{"title too long", "POST", "/api/v1/todos", js, `{"title":"` + strings.Repeat("x", 501) + `"}`, 400, "INVALID_TITLE"},
		{"invalid UTF-8", "POST", "/api/v1/todos", js, "{\"title\":\"a\xff\"}", 400, "INVALID_UTF8"},
		{"body too large", "POST", "/api/v1/todos", js, `{"title":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "PAYLOAD_TOO_LARGE"},
		{"not JSON content type", "POST", "/api/v1/todos", "text/plain", `{"title":"a"}`, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"no content type", "POST", "/api/v1/todos", "", `{"title":"a"}`, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"form content type", "PATCH", one, "application/x-www-form-urlencoded", `title=a`, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"patch empty", "PATCH", one, js, `{}`, 400, "EMPTY_PATCH"},
		{"patch whitespace title", "PATCH", one, js, `{"title":"   "}`, 400, "INVALID_TITLE"},
		{"patch unknown field", "PATCH", one, js, `{"id":7}`, 400, "UNKNOWN_FIELD"},
		{"patch completed null", "PATCH", one, js, `{"completed":null}`, 400, "INVALID_TYPE"},
		{"bad id", "GET", "/api/v1/todos/abc", "", "", 400, "INVALID_ID"},
		{"zero id", "DELETE", "/api/v1/todos/0", "", "", 400, "INVALID_ID"},
		{"negative id", "PATCH", "/api/v1/todos/-1", js, `{"completed":true}`, 400, "INVALID_ID"},
		{"overflowing id", "GET", "/api/v1/todos/99999999999999999999", "", "", 400, "INVALID_ID"},
		{"limit too big", "GET", "/api/v1/todos?limit=101", "", "", 400, "INVALID_QUERY"},
		{"limit zero", "GET", "/api/v1/todos?limit=0", "", "", 400, "INVALID_QUERY"},
		{"completed not bool", "GET", "/api/v1/todos?completed=yes", "", "", 400, "INVALID_QUERY"},
		{"after not int", "GET", "/api/v1/todos?after=x", "", "", 400, "INVALID_QUERY"},
		{"method not allowed", "PUT", one, js, `{"title":"a"}`, 405, "METHOD_NOT_ALLOWED"},
		{"unknown route", "GET", "/api/v1/nope", "", "", 404, "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := alice.do(tc.method, tc.path, tc.ctype, tc.body)
			checkError(t, r, tc.status, tc.code)
		})
	}
	got := alice.req("GET", one, "")
	var after wireTodo
	got.json(t, &after)
	if after.Title != "milk" || after.Completed {
		t.Errorf("todo changed by rejected requests: %+v", after)
	}

	for _, user := range []string{"", "a b", "a,b", strings.Repeat("u", 129), "caf\u00e9"} {
		r := apiClient{t, base, user}.req("GET", "/api/v1/todos", "")
		checkError(t, r, 401, "UNAUTHENTICATED")
	}
	// Two X-User-ID headers are refused, never merged or picked from.
	req, _ := http.NewRequest("GET", base+"/api/v1/todos", nil)
	req.Header["X-User-Id"] = []string{"alice", "bob"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("two X-User-ID headers = %d, want 401", resp.StatusCode)
	}
}

func checkError(t *testing.T, r response, status int, code string) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d, body %q is not a JSON error", r.status, r.body)
	}
	if r.status != status || e.Code != code || e.Message == "" {
		t.Errorf("got %d %s %q, want %d %s", r.status, e.Code, e.Message, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
}

func TestTodoIsolationOverHTTP(t *testing.T) {
	t.Parallel()
	base := newAPI(t)
	alice, bob := apiClient{t, base, "alice"}, apiClient{t, base, "bob"}
	mine := alice.create("alice's secret")
	bob.create("bob's")
	path := fmt.Sprintf("/api/v1/todos/%d", mine.ID)

	for _, tc := range []errorCase{
		{"GET", "GET", path, "", "", 404, "TODO_NOT_FOUND"},
		{"PATCH", "PATCH", path, "application/json", `{"title":"pwned","completed":true}`, 404, "TODO_NOT_FOUND"},
		{"DELETE", "DELETE", path, "", "", 404, "TODO_NOT_FOUND"},
	} {
		checkError(t, bob.do(tc.method, tc.path, tc.ctype, tc.body), tc.status, tc.code)
	}
	var list []wireTodo
	bob.req("GET", "/api/v1/todos?limit=100", "").json(t, &list)
	for _, td := range list {
		if td.UserID != "bob" {
			t.Errorf("bob's list contains %+v", td)
		}
	}
	if len(list) != 1 {
		t.Errorf("bob's list has %d todos, want 1", len(list))
	}
	var got wireTodo
	alice.req("GET", path, "").json(t, &got)
	if got != mine {
		t.Errorf("alice's todo after bob's attempts = %+v, want %+v", got, mine)
	}
}

func TestTodoPagination(t *testing.T) {
	t.Parallel()
	alice := apiClient{t, newAPI(t), "alice"}
	apiClient{t, alice.base, "bob"}.create("bob's, never listed")
	want := map[int64]bool{}
	for i := 0; i < 120; i++ {
		td := alice.create(fmt.Sprintf("todo %d", i))
		want[td.ID] = true
		if i%3 == 0 {
			alice.req("PATCH", fmt.Sprintf("/api/v1/todos/%d", td.ID), `{"completed":true}`)
		}
	}
	seen := map[int64]bool{}
	var last int64
	pages := 0
	next := "/api/v1/todos?limit=25"
	linkRE := regexp.MustCompile(`^<([^>]+)>; rel="next"$`)
	for next != "" {
		r := alice.req("GET", next, "")
		var page []wireTodo
		r.json(t, &page)
		pages++
		for _, td := range page {
			if seen[td.ID] || !want[td.ID] || td.ID <= last {
				t.Fatalf("page %d: unexpected, repeated or out-of-order todo %+v", pages, td)
			}
			seen[td.ID], last = true, td.ID
		}
		next = ""
		if l := r.header.Get("Link"); l != "" {
			m := linkRE.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("Link = %q", l)
			}
			next = m[1]
		}
	}
	if len(seen) != 120 || pages != 5 {
		t.Errorf("walked %d todos in %d pages, want 120 in 5", len(seen), pages)
	}

	count := func(q string) (n int) {
		for next := "/api/v1/todos?limit=100&" + q; next != ""; {
			r := alice.req("GET", next, "")
			var page []wireTodo
			r.json(t, &page)
			for _, td := range page {
				if (q == "completed=true") != td.Completed {
					t.Fatalf("%s returned %+v", q, td)
				}
			}
			n += len(page)
			next = ""
			if m := linkRE.FindStringSubmatch(r.header.Get("Link")); m != nil {
				next = m[1]
			}
		}
		return n
	}
	if done, open := count("completed=true"), count("completed=false"); done != 40 || open != 80 {
		t.Errorf("completed=true gives %d, completed=false %d; want 40 and 80", done, open)
	}
	var def []wireTodo
	alice.req("GET", "/api/v1/todos", "").json(t, &def)
	if len(def) != 50 {
		t.Errorf("default page size = %d, want 50", len(def))
	}
}

func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	alice := apiClient{t, newAPI(t), "alice"}
	const n = 200
	var wg sync.WaitGroup
	ids := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("POST", alice.base+"/api/v1/todos", strings.NewReader(fmt.Sprintf(`{"title":"c%d"}`, i)))
			req.Header.Set("X-User-ID", "alice")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var td wireTodo
			if resp.StatusCode != 201 || json.NewDecoder(resp.Body).Decode(&td) != nil {
				t.Errorf("create %d: status %d", i, resp.StatusCode)
				return
			}
			ids <- td.ID
		}(i)
	}
	wg.Wait()
	close(ids)
	acked := map[int64]bool{}
	for id := range ids {
		acked[id] = true
	}
	titles := map[string]int{}
	for next := "/api/v1/todos?limit=100"; next != ""; {
		r := alice.req("GET", next, "")
		var page []wireTodo
		r.json(t, &page)
		for _, td := range page {
			titles[td.Title]++
			delete(acked, td.ID)
		}
		next = ""
		if m := regexp.MustCompile(`^<([^>]+)>`).FindStringSubmatch(r.header.Get("Link")); m != nil {
			next = m[1]
		}
	}
	if len(titles) != n || len(acked) != 0 {
		t.Errorf("%d distinct titles stored, %d acknowledged ids missing; want %d and 0", len(titles), len(acked), n)
	}
	for title, c := range titles {
		if c != 1 {
			t.Errorf("%q stored %d times", title, c)
		}
	}
}
