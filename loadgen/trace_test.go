package loadgen

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadTrace(t *testing.T) {
	f, err := os.Open("testdata/mini.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadTrace(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{
		{0, 700, 20, []uint64{0, 1}, ""},
		{0, 1100, 3, []uint64{0, 2, 3}, ""},
		{250, 1500, 0, []uint64{0, 1, 4}, ""},
		{900, 512, 40, []uint64{5}, ""},
	}
	if !slices.EqualFunc(got, want, sameRequest) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	two, err := LoadTrace("testdata/mini.jsonl", 2)
	if err != nil || len(two) != 2 {
		t.Fatalf("limit 2: got %d requests, err %v", len(two), err)
	}
}

func sameRequest(a, b Request) bool {
	return a.Timestamp == b.Timestamp && a.InputLength == b.InputLength &&
		a.OutputLength == b.OutputLength && slices.Equal(a.HashIDs, b.HashIDs)
}

func TestReadTraceErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not json", "hello\n", "line 1: not a trace request"},
		{"unknown field", `{"timestamp":0,"input_length":1,"output_length":1,"hash_ids":[1],"x":1}`, "unknown field"},
		{"two values", `{"timestamp":0,"input_length":1,"output_length":1,"hash_ids":[1]} {}`, "more than one JSON value"},
		{"negative timestamp", `{"timestamp":-1,"input_length":1,"output_length":1,"hash_ids":[1]}`, "timestamp is negative"},
		{"zero input", `{"timestamp":0,"input_length":0,"output_length":1,"hash_ids":[1]}`, "input_length must be"},
		{"negative output", `{"timestamp":0,"input_length":1,"output_length":-1,"hash_ids":[1]}`, "output_length is negative"},
		{"no ids", `{"timestamp":0,"input_length":1,"output_length":1,"hash_ids":[]}`, "hash_ids is empty"},
		{"too few ids", `{"timestamp":0,"input_length":513,"output_length":1,"hash_ids":[1]}`, "needs 2 hash ids"},
		{"decreasing", "{\"timestamp\":5,\"input_length\":1,\"output_length\":1,\"hash_ids\":[1]}\n{\"timestamp\":4,\"input_length\":1,\"output_length\":1,\"hash_ids\":[1]}", "line 2: timestamp 4 is before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.in), 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := LoadTrace("testdata/absent.jsonl", 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want ErrNotExist", err)
	}
}

func TestSessionKeys(t *testing.T) {
	reqs := []Request{
		{HashIDs: []uint64{0, 1, 2}},
		{HashIDs: []uint64{0, 1, 2, 3}},
		{HashIDs: []uint64{0, 4}},
		{HashIDs: []uint64{0, 5, 6}},
		{HashIDs: []uint64{7}},
	}
	// Id 0 begins 4 of 5 requests (hot at 50%); the block after it names
	// the conversation.
	got := SessionKeys(reqs, 0.5)
	want := []string{"0-1", "0-1", "0-4", "0-5", "7"}
	if !slices.Equal(got, want) {
		t.Fatalf("SessionKeys = %q, want %q", got, want)
	}
	// With no id hot the first id is the key; with every id hot, all of them.
	if got := SessionKeys(reqs, 1); !slices.Equal(got, []string{"0", "0", "0", "0", "7"}) {
		t.Fatalf("SessionKeys(1) = %q", got)
	}
	if got := SessionKeys(reqs, 0); !slices.Equal(got, []string{"0-1-2", "0-1-2-3", "0-4", "0-5-6", "7"}) {
		t.Fatalf("SessionKeys(0) = %q", got)
	}
}

func FuzzReadTrace(f *testing.F) {
	f.Add([]byte(`{"timestamp": 1, "input_length": 600, "output_length": 2, "hash_ids": [3, 4]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := ReadTrace(strings.NewReader(string(data)), 0)
		if err != nil {
			return
		}
		for i, r := range reqs {
			if r.InputLength <= 0 || r.OutputLength < 0 || r.Timestamp < 0 || len(r.HashIDs)*TraceBlockTokens < r.InputLength {
				t.Fatalf("request %d accepted but invalid: %+v", i, r)
			}
			if i > 0 && r.Timestamp < reqs[i-1].Timestamp {
				t.Fatalf("request %d goes back in time", i)
			}
		}
	})
}

func BenchmarkReadTrace(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString(`{"timestamp": `)
		sb.WriteString(strconv.Itoa(i * 30))
		sb.WriteString(`, "input_length": 12000, "output_length": 300, "hash_ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]}` + "\n")
	}
	data := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ReadTrace(strings.NewReader(data), 0); err != nil {
			b.Fatal(err)
		}
	}
}
