package mtls_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: watchers, Workload API
// streams and handshake servers must all stop when closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
