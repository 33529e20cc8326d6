package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
)

// MailServer is a real SMTP server (Mailpit) for one test, with its API to
// read what was delivered.
type MailServer struct {
	*devenv.Mailpit
}

// Mailpit starts a Mailpit on free loopback ports for this test (building
// the pinned version into the cache on first use) and stops it when the
// test ends. It fails the test when Mailpit cannot be had; it never skips.
func Mailpit(t testing.TB, o devenv.MailpitOptions) *MailServer {
	t.Helper()
	m, err := devenv.StartMailpit(o)
	if err != nil {
		t.Fatalf("testenv: cannot start Mailpit: %v", err)
	}
	t.Cleanup(m.Stop)
	return &MailServer{m}
}

// Mail is one delivered message as Mailpit parsed it.
type Mail struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	Text    string
	HTML    string
	Date    time.Time
	// Headers is filled by Message.
	Headers map[string][]string
}

// Search returns the messages matching a Mailpit search query (for
// example `to:"a@example.com"`), newest first, without bodies.
func (m *MailServer) Search(t testing.TB, query string) []Mail {
	t.Helper()
	var out struct{ Messages []Mail }
	m.get(t, "/api/v1/search?query="+url.QueryEscape(query), &out)
	return out.Messages
}

// Message returns one message with its text and HTML bodies and headers.
func (m *MailServer) Message(t testing.TB, id string) Mail {
	t.Helper()
	var msg Mail
	m.get(t, "/api/v1/message/"+url.PathEscape(id), &msg)
	m.get(t, "/api/v1/message/"+url.PathEscape(id)+"/headers", &msg.Headers)
	return msg
}

// WaitFor polls until at least n messages to address have arrived (Mailpit
// stores asynchronously) and returns the newest, with bodies. It fails the
// test after 10 seconds.
func (m *MailServer) WaitFor(t testing.TB, address string, n int) Mail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := m.Search(t, fmt.Sprintf("to:%q", address))
		if len(list) >= n {
			return m.Message(t, list[0].ID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d message(s) to %s, want %d", len(list), address, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Count returns how many messages to address have arrived.
func (m *MailServer) Count(t testing.TB, address string) int {
	t.Helper()
	return len(m.Search(t, fmt.Sprintf("to:%q", address)))
}

func (m *MailServer) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + m.HTTPAddr + path)
	if err != nil {
		t.Fatalf("mailpit API %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit API %s: %v", path, err)
	}
}
