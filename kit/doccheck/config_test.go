package doccheck

import (
	"slices"
	"testing"
)

func TestDocumentedHasEveryServiceSection(t *testing.T) {
	for _, svc := range []string{"proxy", "backend", "authsvc", "web"} {
		got, err := Documented(svc)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, "LOG_LEVEL") {
			t.Errorf("%s: the \"Every service\" variables are not included: %v", svc, got)
		}
	}
	if _, err := Documented("no-such-service-x"); err == nil {
		t.Error("a service without a section has documented variables")
	}
}

// Check fails both ways: a variable read but not documented, and one
// documented but not read.
func TestCheckFailsBothWays(t *testing.T) {
	doc, err := Documented("web")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read []string
		fail bool
	}{
		{"exactly the documented", doc, false},
		{"one more read", append(slices.Clone(doc), "WEB_SECRET_FEATURE"), true},
		{"one fewer read", doc[1:], true},
	} {
		ft := &fakeT{TB: t}
		Check(ft, "web", tc.read)
		if ft.failed != tc.fail {
			t.Errorf("%s: failed = %v, want %v", tc.name, ft.failed, tc.fail)
		}
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatal(...any)          { f.failed = true }
func (f *fakeT) Helper()               {}
