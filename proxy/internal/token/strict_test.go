package token

import "testing"

// FuzzStrictClaimsFast checks that the hand-written fast path decides
// exactly as the encoding/json path whenever it decides at all.
func FuzzStrictClaimsFast(f *testing.F) {
	for _, s := range []string{
		`{"sub":"a","exp":1,"iat":2}`,
		` { "sub" : "a" , "aud" : ["x","y"], "exp" : 1e9 } `,
		`{"EXP":1}`, `{"exp":"1"}`, `{"exp":1,"exp":2}`, `{"Sub":"a"}`,
		`{"x":{"exp":"nested is fine"},"exp":-1}`, `{"a":[{"b":[]}],"nbf":null}`,
		`{"iat":true}`, `{}`, `[]`, `"exp"`, `{"s\u0075b":"x"}`, `{"exp":1,}`,
		`{"jti":"x","sid":"y","iss":"z","nbf":0}`, `{"ex":1,"expp":2,"":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		decided, fast := strictClaimsFast(p)
		if !decided {
			return
		}
		slow := strictClaimsJSON(p)
		if (fast == nil) != (slow == nil) {
			t.Fatalf("%q: fast path %v, encoding/json path %v", p, fast, slow)
		}
	})
}

// encoding/json folds keys with full Unicode case folding, so "ſub" (long s)
// and "K"-with-Kelvin-sign spellings are read as registered claims: they must
// be refused like any other non-exact spelling (found in review).
func TestStrictClaimsUnicodeFolding(t *testing.T) {
	for _, p := range []string{
		`{"sub":"alice","ſub":"admin","exp":1}`,
		`{"sub":"alice","exp":1,"iſs":"x"}`,
		`{"sub":"alice","exp":1,"ſid":"s"}`,
		`{"sub":"alice","exp":1,"SUB":"admin"}`,
	} {
		if err := strictClaimsJSON([]byte(p)); err == nil {
			t.Errorf("strictClaimsJSON(%s) accepted a case-folded registered claim", p)
		}
	}
	if err := strictClaimsJSON([]byte(`{"sub":"alice","exp":1,"ſomething":"else"}`)); err != nil {
		t.Errorf("an unregistered non-ASCII claim was refused: %v", err)
	}
}
