package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchConfigMapSwap mimics a Kubernetes ConfigMap volume: the watched
// name is a symlink through ..data, and an update swaps ..data to a new
// directory with a rename.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	write := func(ts, body string) {
		d := filepath.Join(dir, ts)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "kvgate.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("..2024_01_01_00_00_00.1", "one")
	path := filepath.Join(dir, "kvgate.yaml")
	if err := os.Symlink(filepath.Join("..data", "kvgate.yaml"), path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	var n atomic.Int32
	done := make(chan error)
	go func() {
		done <- Watch(ctx, path, 20*time.Millisecond, func() { n.Add(1); calls <- struct{}{} })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// The watch starts asynchronously: keep swapping until one is seen (bounded).
	for i := 0; i < 50; i++ {
		write("..2024_01_01_00_00_01."+string(rune('a'+i%26))+string(rune('a'+i/26)), "two, longer")
		select {
		case <-calls:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("a ..data swap never triggered the callback")
}

func TestWatchIgnoresUnrelatedUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kvgate.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan error)
	go func() { done <- Watch(ctx, path, 10*time.Millisecond, func() { calls <- struct{}{} }) }()
	defer func() { cancel(); <-done }()
	for i := range 6 {
		// An unrelated file changes first; then the watched one.
		_ = os.WriteFile(filepath.Join(dir, "other"), []byte{byte(i)}, 0o644)
		select {
		case <-calls:
			t.Fatal("callback for an unrelated file")
		case <-time.After(30 * time.Millisecond):
		}
	}
	if err := os.WriteFile(path, []byte("bb"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("change of the watched file not seen")
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "kvgate.yaml"), time.Millisecond, func() {})
	if err == nil {
		t.Fatal("watching a missing directory succeeded")
	}
}
