package password

import (
	"context"
	"strings"
	"testing"
)

// Vectors made by Better Auth 1.7's own hashPassword (@better-auth/utils,
// in testdata/client): `node -e 'import("@better-auth/utils/password")...'`.
// The second password is full-width and has a ligature, so it only matches
// after NFKC normalisation, as Better Auth normalises.
var betterAuthVectors = []struct{ password, hash string }{
	{"correct-horse-battery", "ca10e8223f522b961744e25805518b03:e03165ccb7d151ae020556909be67a720732c19a90178f8ab6b8f617b65c0fff10bec1d8762506565644d9368d7e9749ec8fd6f1ac79bd3e113935e98df19e81"},
	{"Ｐａｓｓｗｏｒｄ-ﬁ-12", "361740254bc4a44cb3f1fe9352c42b68:0d142d9f82ff44bfdf15039abec92e55b83452e5b1595da11de8160d4351aebe875eb66aaa7867fef819d47921fc36f6ddf1e735dc3705b7698ac8d243f7806c"},
}

func TestVerifyBetterAuth(t *testing.T) {
	h, err := New(Params{Memory: 1024, Iterations: 1, Parallelism: 1}, 1, Observer{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range betterAuthVectors {
		stored, err := FromBetterAuth(v.hash)
		if err != nil {
			t.Fatal(err)
		}
		ok, rehash, err := h.Verify(ctx, v.password, stored)
		if err != nil || !ok || !rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want a match that asks for a rehash", v.password, ok, rehash, err)
		}
		ok, rehash, err = h.Verify(ctx, v.password+"x", stored)
		if err != nil || ok || rehash {
			t.Errorf("Verify(wrong) = %v, %v, %v; want no match", ok, rehash, err)
		}
	}
	// NFKC: the ASCII spelling of the full-width password matches too.
	stored, _ := FromBetterAuth(betterAuthVectors[1].hash)
	if ok, _, _ := h.Verify(ctx, "Password-fi-12", stored); !ok {
		t.Error("NFKC-equivalent password did not match")
	}
	for _, bad := range []string{"", "nocolon", "ab:" + strings.Repeat("z", 128), "ab:abcd"} {
		if _, err := FromBetterAuth(bad); err == nil {
			t.Errorf("FromBetterAuth(%q) accepted", bad)
		}
	}
	if _, _, err := h.Verify(ctx, "x", BetterAuthPrefix+"ab:cd"); err != ErrMalformed {
		t.Errorf("malformed imported hash: err = %v, want ErrMalformed", err)
	}
}
