package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// User is a browser-like client of one stack: it keeps cookies, sends the
// stack's Origin on every request (as a same-origin page would), and may
// carry a bearer token instead.
type User struct {
	t      testing.TB
	s      *Stack
	Client *http.Client
	Email  string
	Bearer string // sent as Authorization when set
	NoJar  bool
}

// Resp is a finished response with its body read.
type Resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r Resp) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("status %d: body %q: %v", r.Status, r.Body, err)
	}
}

// Code is the "code" of a JSON error body, or "".
func (r Resp) Code() string {
	var e struct{ Code string }
	_ = json.Unmarshal(r.Body, &e)
	return e.Code
}

func (r Resp) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// NewUser returns a client with an empty cookie jar.
func (s *Stack) NewUser(t testing.TB) *User {
	jar, _ := cookiejar.New(nil)
	return &User{t: t, s: s, Client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// Do sends a request through the proxy. headers are added verbatim (raw
// keys, not canonicalised), after the client's own.
func (u *User) Do(method, path, body string, headers ...string) Resp {
	u.t.Helper()
	req, err := http.NewRequest(method, u.s.URL+path, strings.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Origin", u.s.URL)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+u.Bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header[headers[i]] = append(req.Header[headers[i]], headers[i+1])
	}
	resp, err := u.Client.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Resp{resp.StatusCode, resp.Header, b}
}

// SignUp creates an account and keeps its cookies.
func (u *User) SignUp(email, password string) Resp {
	u.t.Helper()
	u.Email = email
	r := u.Do("POST", "/api/auth/sign-up/email", fmt.Sprintf(`{"name":%q,"email":%q,"password":%q}`, strings.Split(email, "@")[0], email, password))
	if r.Status != http.StatusOK {
		u.t.Fatalf("sign-up %s: %s", email, r)
	}
	return r
}

// SignIn signs in and keeps the cookies; it returns the response as is.
func (u *User) SignIn(email, password string) Resp {
	u.t.Helper()
	u.Email = email
	return u.Do("POST", "/api/auth/sign-in/email", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
}

// Token fetches a JWT from /api/auth/token with the session cookie.
func (u *User) Token() string {
	u.t.Helper()
	r := u.Do("GET", "/api/auth/token", "")
	var out struct{ Token string }
	r.JSON(u.t, &out)
	if r.Status != http.StatusOK || out.Token == "" {
		u.t.Fatalf("token: %s", r)
	}
	return out.Token
}

// Todo is the backend's wire form.
type Todo struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
	UserID    string `json:"user_id"`
}

// CreateTodo posts a todo and fails the test unless it gets 201.
func (u *User) CreateTodo(title string) Todo {
	u.t.Helper()
	r := u.Do("POST", "/api/v1/todos", fmt.Sprintf(`{"title":%q}`, title))
	if r.Status != http.StatusCreated {
		u.t.Fatalf("create todo: %s", r)
	}
	var td Todo
	r.JSON(u.t, &td)
	return td
}

// Todos lists the first 100 todos and fails the test unless it gets 200.
func (u *User) Todos() []Todo {
	u.t.Helper()
	r := u.Do("GET", "/api/v1/todos?limit=100", "")
	if r.Status != http.StatusOK {
		u.t.Fatalf("list todos: %s", r)
	}
	var list []Todo
	r.JSON(u.t, &list)
	return list
}
