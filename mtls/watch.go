package mtls

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long a directory must stay quiet before files are re-read: writers that
// replace a certificate and its key one after the other, or Kubernetes swapping its ..data
// symlink, produce a burst of events that should cause one reload.
const debounce = 100 * time.Millisecond

// dirWatcher calls reload once after every burst of changes in any of its directories.
// It watches directories, not files, because atomic renames and symlink swaps replace the
// file a file watch would follow.
type dirWatcher struct {
	w    *fsnotify.Watcher
	done chan struct{}
	wg   sync.WaitGroup
}

func watchDirs(files []string, reload func(), log *slog.Logger) (*dirWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("mtls: start file watcher: %w", err)
	}
	var dirs []string
	for _, f := range files {
		d := filepath.Dir(f)
		if slices.Contains(dirs, d) {
			continue
		}
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("mtls: watch %s: %w (does the directory exist and is it readable?)", d, err)
		}
		dirs = append(dirs, d)
	}
	dw := &dirWatcher{w: w, done: make(chan struct{})}
	dw.wg.Add(1)
	go dw.loop(reload, log)
	return dw, nil
}

func (dw *dirWatcher) loop(reload func(), log *slog.Logger) {
	defer dw.wg.Done()
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-dw.done:
			return
		case _, ok := <-dw.w.Events:
			if !ok {
				return
			}
			timer.Reset(debounce)
		case err, ok := <-dw.w.Errors:
			if !ok {
				return
			}
			log.Warn("mtls: file watcher error; reloading to be safe", "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			reload()
		}
	}
}

// Close stops watching and waits for a reload in progress to finish.
func (dw *dirWatcher) Close() error {
	close(dw.done)
	err := dw.w.Close()
	dw.wg.Wait()
	return err
}
