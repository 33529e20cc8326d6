package password

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var cheap = Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// TestDefaultParams runs the production parameters once: OWASP's minimum
// argon2id (m=19 MiB, t=2, p=1), in PHC format.
func TestDefaultParams(t *testing.T) {
	h, err := New(DefaultParams, 1, Observer{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash = %q, want PHC argon2id with m=19456,t=2,p=1", enc)
	}
	if ok, rehash, err := h.Verify(context.Background(), "correct horse battery staple", enc); !ok || rehash || err != nil {
		t.Errorf("Verify(right) = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(context.Background(), "wrong", enc); ok {
		t.Error("Verify(wrong) = true")
	}
	if DefaultParams.Weak() || !cheap.Weak() {
		t.Error("Weak() misclassifies parameters")
	}
}

func TestSaltIsRandomAndRehashOnParamChange(t *testing.T) {
	ctx := context.Background()
	old, _ := New(cheap, 1, Observer{})
	a, _ := old.Hash(ctx, "pw")
	b, _ := old.Hash(ctx, "pw")
	if a == b {
		t.Error("two hashes of one password are equal: salt not random")
	}
	stronger := cheap
	stronger.Memory = 2048
	cur, _ := New(stronger, 1, Observer{})
	ok, rehash, err := cur.Verify(ctx, "pw", a)
	if !ok || !rehash || err != nil {
		t.Errorf("Verify(old params) = %v, %v, %v; want a match that needs rehash", ok, rehash, err)
	}
	if ok, rehash, _ := cur.Verify(ctx, "nope", a); ok || rehash {
		t.Errorf("wrong password: ok=%v rehash=%v", ok, rehash)
	}
}

func TestMalformedHashes(t *testing.T) {
	h, _ := New(cheap, 1, Observer{})
	for _, s := range []string{
		"", "plain", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 95 GiB: refused, not allocated
		"$argon2id$v=19$m=1024,t=1,p=1$!!$aGFzaA",
		"$2a$10$abcdefghijklmnopqrstuu", // bcrypt
	} {
		if ok, _, err := h.Verify(context.Background(), "pw", s); ok || err != ErrMalformed {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformed", s, ok, err)
		}
	}
	if err := h.VerifyDummy(context.Background(), "pw"); err != nil {
		t.Errorf("VerifyDummy: %v", err)
	}
}

// TestBurstIsBoundedInMemory hashes 200 passwords at once, like a flood of
// sign-ins: with the bound, live heap stays near concurrency × Memory
// instead of 200 × Memory (400 MiB here).
func TestBurstIsBoundedInMemory(t *testing.T) {
	p := cheap
	p.Memory = 2048 // 2 MiB per run
	var ran atomic.Int64
	var peakRunning atomic.Int64
	h, _ := New(p, 2, Observer{Hashed: func(wait, work time.Duration) { ran.Add(1) }})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	stop := make(chan struct{})
	var peakHeap uint64
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse)
				peakRunning.Store(max(peakRunning.Load(), int64(len(h.sem))))
			}
		}
	}()
	var wg sync.WaitGroup
	var maxQueue atomic.Int64
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(context.Background(), "pw"); err != nil {
				t.Error(err)
			}
			maxQueue.Store(max(maxQueue.Load(), int64(h.QueueDepth())))
		}()
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if n := ran.Load(); n != 200+1 { // +1: the dummy hash made by New
		t.Errorf("ran %d hashes", n)
	}
	if peakRunning.Load() > 2 {
		t.Errorf("%d hashes ran at once, want at most 2", peakRunning.Load())
	}
	grew := int64(peakHeap) - int64(before.HeapInuse)
	t.Logf("heap grew by at most %d MiB; queue depth seen up to %d", grew>>20, maxQueue.Load())
	if grew > 64<<20 {
		t.Errorf("heap grew by %d MiB during the burst, want well under 64 MiB", grew>>20)
	}
	if h.QueueDepth() != 0 {
		t.Errorf("queue depth %d after the burst", h.QueueDepth())
	}
}

func TestQueueGivesUpWithContext(t *testing.T) {
	h, _ := New(cheap, 1, Observer{})
	h.sem <- struct{}{} // occupy the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "pw"); err == nil {
		t.Fatal("Hash succeeded with no free slot")
	}
	if h.QueueDepth() != 0 {
		t.Errorf("queue depth %d after giving up", h.QueueDepth())
	}
	<-h.sem
}

func TestCommonPasswordList(t *testing.T) {
	long := 0
	CommonEntries(func(s string) {
		if n := len([]rune(s)); n >= 8 && n <= 128 {
			long++
		}
	})
	if long < 1000 {
		t.Errorf("list has %d entries of 8–128 characters, want at least 1000", long)
	}
	if CommonCount() < long {
		t.Errorf("CommonCount = %d, fewer than the %d entries read", CommonCount(), long)
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"PassWord", true}, // letter case does not help
		{"12345678", true},
		{"baseball", true},
		{"password123", true},
		{"iloveyou", true},
		{"# Common passwords rejected at sign-up (authsvc/internal/password).", false}, // header is not an entry
		{"", false},
		{"correct horse battery staple", false},
		{"vT9#qL2!mZ7@wR4$", false},
	} {
		if got := Common(tt.pw); got != tt.want {
			t.Errorf("Common(%q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
}
