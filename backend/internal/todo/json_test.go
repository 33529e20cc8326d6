package todo

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// wireTodo is the documented wire form, decoded by encoding/json: what a
// client sees must not depend on AppendJSON being hand-written.
type wireTodo struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
	UserID    string `json:"user_id"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func TestAppendJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 15, 4, 5, 678_901_234, time.FixedZone("CET", 3600))
	titles := []string{
		"plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnewline\ncr\r",
		"\x00\x01\x1f\x7f", "é ü 漢字 🙂", "\u2028\u2029", "bad utf-8 \xff\xfe end", "",
	}
	for _, title := range titles {
		td := Todo{ID: 42, UserID: "user-1", Title: title, Completed: true, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
		b := td.AppendJSON([]byte("prefix"))
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendJSON lost dst: %q", b)
		}
		b = b[len("prefix"):]
		if !json.Valid(b) {
			t.Fatalf("title %q: invalid JSON %q", title, b)
		}
		var got wireTodo
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("title %q: %v in %s", title, err, b)
		}
		want := wireTodo{ID: 42, Title: string([]rune(title)), Completed: true, UserID: "user-1",
			CreatedAt: "2026-12-01T14:04:05.678Z", UpdatedAt: "2026-12-01T14:04:06.678Z"}
		if got != want {
			t.Errorf("title %q:\n got %+v\nwant %+v", title, got, want)
		}
		// Through MarshalJSON (any caller that hands a Todo to
		// encoding/json) the wire form is the same.
		m, err := json.Marshal(td)
		if err != nil {
			t.Fatal(err)
		}
		var viaStd wireTodo
		if err := json.Unmarshal(m, &viaStd); err != nil || viaStd != want {
			t.Errorf("json.Marshal(todo) = %s (%v), want %+v", m, err, want)
		}
	}
}

// TestAppendTime holds AppendTime to AppendFormat(TimeFormat) over times
// spread across every year and zone offset AppendTime may meet.
func TestAppendTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{{}, time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 1e6, time.UTC)}
	lo, hi := time.Date(-100, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(10100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 100_000 {
		sec := lo + rng.Int64N(hi-lo)
		zone := time.FixedZone("z", (rng.IntN(53)-26)*1800)
		times = append(times, time.Unix(sec, rng.Int64N(1e9)).In(zone))
	}
	for _, at := range times {
		want := at.UTC().AppendFormat([]byte("x"), TimeFormat)
		if got := AppendTime([]byte("x"), at); !bytes.Equal(got, want) {
			t.Fatalf("%v: AppendTime %q, AppendFormat %q", at, got, want)
		}
	}
}

func TestAppendJSONList(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		todos := make([]Todo, n)
		for i := range todos {
			todos[i] = Todo{ID: int64(i + 1), UserID: "u", Title: "t"}
		}
		b := AppendJSONList(nil, todos)
		var got []wireTodo
		if err := json.Unmarshal(b, &got); err != nil || len(got) != n {
			t.Fatalf("%d todos: %s decoded to %d (%v)", n, b, len(got), err)
		}
		for i, g := range got {
			if g.ID != int64(i+1) {
				t.Errorf("%d todos: item %d has id %d", n, i, g.ID)
			}
		}
	}
	if b := AppendJSONList(nil, nil); string(b) != "[]" {
		t.Errorf("empty list = %s, want []", b)
	}
}

// reflectTodo is the encoding AppendJSON replaced (issue 18): a MarshalJSON
// that builds the wire struct and hands it to encoding/json, kept here as
// the benchmark's baseline.
type reflectTodo Todo

func (t reflectTodo) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireTodo{t.ID, t.Title, t.Completed, t.UserID,
		t.CreatedAt.UTC().Format(TimeFormat), t.UpdatedAt.UTC().Format(TimeFormat)})
}

// BenchmarkListJSON is the list endpoint's encoding of a full default page:
// the encoding/json baseline it replaced, then AppendJSONList.
func BenchmarkListJSON(b *testing.B) {
	now := time.Now()
	todos := make([]Todo, DefaultLimit)
	for i := range todos {
		todos[i] = Todo{ID: int64(1000 + i), UserID: "0f8fad5b-d9cb-469f-a165-70867728950e", Title: "benchmark todo", Completed: i%3 == 0, CreatedAt: now, UpdatedAt: now}
	}
	old := make([]reflectTodo, len(todos))
	for i, t := range todos {
		old[i] = reflectTodo(t)
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(old); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSONList", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 16<<10)
		for b.Loop() {
			buf = AppendJSONList(buf[:0], todos)
		}
	})
}
