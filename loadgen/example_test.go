package loadgen_test

import (
	"fmt"
	"strings"

	"github.com/kvgate/kvgate/loadgen"
)

func ExampleReadTrace() {
	trace := `{"timestamp": 0, "input_length": 700, "output_length": 20, "hash_ids": [0, 1]}
{"timestamp": 40, "input_length": 900, "output_length": 5, "hash_ids": [0, 2]}`
	reqs, err := loadgen.ReadTrace(strings.NewReader(trace), 0)
	if err != nil {
		panic(err)
	}
	for _, r := range reqs {
		fmt.Println(r.Timestamp, r.InputLength, r.HashIDs)
	}
	// Output:
	// 0 700 [0 1]
	// 40 900 [0 2]
}

func ExamplePromptText() {
	a := loadgen.PromptText([]uint64{0, 1}, 700)
	b := loadgen.PromptText([]uint64{0, 2}, 900)
	fmt.Println(len(a), len(b), a[:loadgen.BlockChars] == b[:loadgen.BlockChars], a[loadgen.BlockChars:][:64] == b[loadgen.BlockChars:][:64])
	// Output: 2800 3600 true false
}

func ExampleSynthetic() {
	reqs := loadgen.Synthetic(loadgen.SyntheticSpec{Conversations: 2, Turns: 2, SystemBlocks: 1, TurnBlocks: 1, Output: 16})
	for _, r := range reqs {
		fmt.Println(r.HashIDs, r.InputLength)
	}
	// Output:
	// [0 1] 896
	// [0 1 2] 1408
	// [0 3] 896
	// [0 3 4] 1408
}
