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
	"time"

	"github.com/kvgate/kvgate/admin/admintest"
)

func main() {
	out := flag.String("o", "docs/status-page.png", "write the screenshot to `FILE`")
	dur := flag.Duration("duration", 20*time.Second, "drive traffic for `DURATION` first (the charts show it)")
	width := flag.Int("width", 1440, "viewport width in CSS pixels")
	height := flag.Int("height", 2000, "viewport height in CSS pixels")
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
	s, err := admintest.Start(ctx, dir)
	if err != nil {
		return err
	}
	defer s.Close()
	end := time.Now().Add(dur)
	round := 0
	for time.Now().Before(end) {
		// Conversations arrive over time: 3 new each round, each old one a turn further.
		convs := min(3*(round+1), 24)
		for c := range convs {
			turn := round - c/3
			if turn < 0 || turn > 6 {
				continue
			}
			_ = s.Chat(c, turn)
		}
		_ = s.Tool()
		if round == 3 {
			_ = s.Reload(20, false)
			_ = s.Chat(0, 0, "x-tenant", "blocked")
		}
		if round == 6 {
			_ = s.Reload(30, true) // refused: the page lists the error
		}
		round++
		time.Sleep(400 * time.Millisecond)
	}
	for range 4 {
		_ = s.Tool() // the dead endpoint is ejected after 3 failures in a row
	}
	if err := admintest.Screenshot(ctx, browser, s.Admin+"/", out, width, height, 3000); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}
