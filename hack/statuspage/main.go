// Command statuspage regenerates docs/status-page.png, the README's picture
// of the status page: it starts kvgate in process in front of simulated
// model servers (admin/admintest), drives conversations, plain requests, a
// denied request and two reloads (one refused) through it for a while, and
// takes a screenshot with headless Chromium. Run it with make
// status-screenshot.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kvgate/kvgate/admin/admintest"
)

func main() {
	out := flag.String("o", "docs/status-page.png", "write the screenshot to `FILE`")
	dur := flag.Duration("duration", 20*time.Second, "drive traffic for `DURATION` first (the charts show it)")
	width := flag.Int("width", 1440, "viewport width in CSS pixels")
	height := flag.Int("height", 1840, "viewport height in CSS pixels")
	flag.Parse()
	if err := run(*out, *dur, *width, *height); err != nil {
		fmt.Fprintln(os.Stderr, "statuspage:", err)
		os.Exit(1)
	}
}

func run(out string, dur time.Duration, width, height int) error {
	browser := admintest.Chromium()
	if browser == "" {
		return fmt.Errorf("no Chromium found: install chromium (apt-get install chromium) or set CHROMIUM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "kvgate-statuspage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Run from the temporary folder, so that the page names the
	// configuration kvgate.yaml rather than a path of this machine.
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	defer os.Chdir(wd)
	s, err := admintest.Start(ctx, ".")
	if err != nil {
		return err
	}
	defer s.Close()
	// Conversations arrive over time, 3 new ones a round, and every open
	// one comes back with its next turn; it goes on while the picture is
	// taken, so that the charts and counters are live.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			for c := max(0, 3*(round-8)); c < 3*(round+1); c++ {
				_ = s.Chat(c, round-c/3) // conversation c opened in round c/3
			}
			if round%2 == 0 {
				_ = s.Tool()
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(dur / 3)
	_ = s.Reload(20, false)
	_ = s.Chat(0, 0, "x-tenant", "blocked")
	time.Sleep(dur / 3)
	_ = s.Reload(30, true) // refused: the page lists the error
	time.Sleep(dur / 3)
	// The dead endpoint is ejected for 5 s after 3 refused connections in a
	// row: keep ejecting it while Chromium starts and renders.
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ejected(s) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			_ = s.Tool()
		}
	}()
	for i := 0; i < 200 && !ejected(s); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if err := admintest.Screenshot(ctx, browser, s.Admin+"/", out, width, height, 3000); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

func ejected(s *admintest.Stack) bool {
	for _, p := range s.Proxy.Status().Pools {
		for _, e := range p.Endpoints {
			if e.Address == s.Dead {
				return e.State == "ejected"
			}
		}
	}
	return false
}
