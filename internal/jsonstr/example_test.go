package jsonstr_test

import (
	"fmt"

	"github.com/kvgate/kvgate/internal/jsonstr"
)

func ExampleAppend() {
	b := []byte(`{"path":`)
	b = jsonstr.Append(b, "/v1/a\x01\xff\"b")
	b = append(b, '}')
	fmt.Println(string(b))
	// Output: {"path":"/v1/a\u0001�\"b"}
}
