package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// parsePage parses static/index.html.
func parsePage(t *testing.T) *html.Node {
	t.Helper()
	f, err := os.Open("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func byID(doc *html.Node) map[string]*html.Node {
	ids := map[string]*html.Node{}
	walk(doc, func(n *html.Node) {
		if id, ok := attr(n, "id"); ok && n.Type == html.ElementNode {
			ids[id] = n
		}
	})
	return ids
}

// The CSP allows no inline script or style, so the page must have none: such
// code would silently not run (or not apply) in the browser.
func TestPageHasNoInlineCode(t *testing.T) {
	t.Parallel()
	served := map[string]bool{}
	for _, f := range files {
		served[strings.TrimSuffix(f.pattern, "{$}")] = true
	}
	walk(parsePage(t), func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script":
			src, ok := attr(n, "src")
			if !ok || !served[src] {
				t.Errorf("<script> without a served src (src=%q)", src)
			}
			if n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != "" {
				t.Errorf("<script src=%q> has an inline body", src)
			}
		case "style":
			t.Error("<style> block: CSP style-src 'self' forbids it; use app.css")
		case "link", "img":
			for _, k := range []string{"href", "src"} {
				if v, ok := attr(n, k); ok && !served[v] {
					t.Errorf("<%s %s=%q> refers to a file web does not serve", n.Data, k, v)
				}
			}
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "style":
				t.Errorf("<%s> has a style attribute: CSP forbids inline styles", n.Data)
			case strings.HasPrefix(a.Key, "on"):
				t.Errorf("<%s> has an inline handler %s: CSP forbids it", n.Data, a.Key)
			case strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
				t.Errorf("<%s %s> is a javascript: URL", n.Data, a.Key)
			}
		}
	})
}

// The ids and fields the browser test relies on. Renaming one breaks it.
func TestPageHasStableSelectors(t *testing.T) {
	t.Parallel()
	doc := parsePage(t)
	ids := byID(doc)
	for _, id := range []string{"signup-form", "signin-form", "signout", "todo-form", "todo-list", "error", "whoami"} {
		if ids[id] == nil {
			t.Errorf("#%s missing", id)
		}
	}
	if n := ids["error"]; n != nil {
		if role, _ := attr(n, "role"); role != "alert" {
			t.Errorf(`#error role = %q, want "alert"`, role)
		}
	}
	if n := ids["todo-list"]; n != nil && n.Data != "ul" {
		t.Errorf("#todo-list is <%s>, want <ul>", n.Data)
	}
	for form, fields := range map[string][]string{
		"signup-form": {"name", "email", "password"},
		"signin-form": {"email", "password"},
		"todo-form":   {"title"},
	} {
		n := ids[form]
		if n == nil {
			continue
		}
		var names []string
		submit := false
		walk(n, func(c *html.Node) {
			if c.Type != html.ElementNode {
				return
			}
			if name, ok := attr(c, "name"); ok && c.Data == "input" {
				names = append(names, name)
			}
			if typ, _ := attr(c, "type"); c.Data == "button" && typ == "submit" {
				submit = true
			}
		})
		for _, f := range fields {
			if !slices.Contains(names, f) {
				t.Errorf("#%s has no input name=%s (has %v)", form, f, names)
			}
		}
		if !submit {
			t.Errorf("#%s has no submit button", form)
		}
		// Without JavaScript a form falls back to a native submit; POST
		// keeps a password out of the URL, history and access logs.
		if m, _ := attr(n, "method"); m != "post" {
			t.Errorf("#%s method = %q, want post", form, m)
		}
	}
}

func TestPageIDsAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]int{}
	walk(parsePage(t), func(n *html.Node) {
		if id, ok := attr(n, "id"); ok && n.Type == html.ElementNode {
			seen[id]++
		}
	})
	for id, n := range seen {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
}

// Every element app.js looks up exists, so a renamed id fails here rather
// than as a null dereference in the browser.
func TestScriptFindsItsElements(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	ids := byID(parsePage(t))
	found := regexp.MustCompile(`\bel\("([^"]+)"\)`).FindAllSubmatch(js, -1)
	if len(found) < 10 {
		t.Fatalf("found only %d el(\"…\") look-ups in app.js; has the helper been renamed?", len(found))
	}
	for _, m := range found {
		if ids[string(m[1])] == nil {
			t.Errorf("app.js looks up #%s, which index.html lacks", m[1])
		}
	}
}

// A crude guard on app.js's own rules: user data only through textContent,
// no eval, and tokens never touched by script. Comments are skipped.
func TestScriptAvoidsDangerousAPIs(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for _, line := range strings.Split(string(js), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "//") {
			code.WriteString(line + "\n")
		}
	}
	for _, bad := range []string{
		"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"setTimeout(\"", "localStorage", "sessionStorage", "document.cookie", "indexedDB",
	} {
		if strings.Contains(code.String(), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	if !strings.Contains(code.String(), `credentials: "same-origin"`) {
		t.Error(`app.js does not send credentials: "same-origin"`)
	}
}
