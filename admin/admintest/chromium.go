package admintest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Chromium returns the path of a Chromium (or Chrome) binary: $CHROMIUM
// when set, else the first of chromium, chromium-browser, google-chrome on
// $PATH; "" when there is none.
func Chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chromiumArgs are the flags of one headless run with a fresh profile in
// dir: no sandbox (tests run as root in CI), no GPU, no background traffic
// to Google, no first-run dialogs.
func chromiumArgs(dir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--hide-scrollbars", "--mute-audio", "--user-data-dir=" + dir}
}

// DumpDOM loads url in headless Chromium, lets its scripts run for budget
// milliseconds of virtual time (timers included, so the live refresh
// runs), and returns the serialised DOM.
func DumpDOM(ctx context.Context, browser, url string, budgetMS int) (string, error) {
	dir, err := os.MkdirTemp("", "kvgate-chromium-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	args := append(chromiumArgs(dir), "--virtual-time-budget="+strconv.Itoa(budgetMS), "--dump-dom", url)
	cmd := exec.CommandContext(ctx, browser, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("admintest: %s --dump-dom: %w\n%s", browser, err, stderr.String())
	}
	return string(out), nil
}

// Screenshot saves a PNG of url, width × height CSS pixels, to out.
func Screenshot(ctx context.Context, browser, url, out string, width, height, budgetMS int) error {
	dir, err := os.MkdirTemp("", "kvgate-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	args := append(chromiumArgs(dir), "--virtual-time-budget="+strconv.Itoa(budgetMS),
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "--screenshot="+abs, url)
	cmd := exec.CommandContext(ctx, browser, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("admintest: %s --screenshot: %w\n%s", browser, err, stderr.String())
	}
	if st, err := os.Stat(abs); err != nil || st.Size() == 0 {
		return errors.Join(errors.New("admintest: chromium wrote no screenshot"), err)
	}
	return nil
}

// limitedBuffer keeps the last 8 KiB written (Chromium's stderr is chatty).
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 8<<10 {
		l.b = l.b[len(l.b)-8<<10:]
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
