package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls fn after the file at path changes, until ctx is done. It
// watches the file's directory rather than the file, so that editors that
// replace the file and Kubernetes ConfigMap volumes (which swap a `..data`
// symlink to a new directory) are seen. Bursts of events are debounced: fn
// runs once, debounce after the last event, and only when the file path now
// resolves to a different file or its size or modification time changed.
// fn runs on Watch's goroutine, never concurrently with itself. Watch
// returns nil when ctx is done, or an error when the directory cannot be
// watched.
func Watch(ctx context.Context, path string, debounce time.Duration, fn func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("config: watch the directory of %s: %w (check it exists and is readable)", path, err)
	}
	last, _ := os.Stat(path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			timer.Reset(debounce)
		case _, ok := <-w.Errors:
			if !ok {
				return nil
			}
			timer.Reset(debounce) // events may have been lost: check the file
		case <-timer.C:
			cur, err := os.Stat(path)
			if err != nil || !changed(last, cur) {
				continue // missing mid-swap, or unchanged: wait for the next event
			}
			last = cur
			fn()
		}
	}
}

func changed(a, b os.FileInfo) bool {
	if a == nil {
		return true
	}
	return !os.SameFile(a, b) || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())
}
