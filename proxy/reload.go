package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/kvgate/kvgate/config"
)

// reloadMu serialises reloads from source (admin POST /reload, SIGHUP and
// the file watcher may race); Reload itself is a single atomic swap.
var reloadMu sync.Mutex

// Loader reads the configuration a reload swaps in, defaulted and
// validated, with Source naming where it came from. On error the running
// configuration stays; the error should name the file, the line and the
// fix. Calls are serialised.
type Loader func() (*config.Config, error)

// SetLoader sets how ReloadSource (and so POST /reload) reads the
// configuration: give it the function that read the configuration at
// start-up, so that a reload reads the same kind of file the same way
// (kvgate run's reads native YAML or adapts Kubernetes manifests). Without
// one, a reload reads the running configuration's Source with config.Load,
// which takes native YAML only. Call it before Start.
func (p *Proxy) SetLoader(load Loader) { p.loader = load }

// ReloadSource reads the configuration again (see SetLoader), validates and
// compiles it and swaps it in atomically. On any error the running
// configuration keeps serving, the error is logged and counted in
// kvgate_config_reloads_total{result="error"}. Listeners and the admin
// address are fixed at start: changes to them wait for a restart.
func (p *Proxy) ReloadSource() error {
	reloadMu.Lock()
	defer reloadMu.Unlock()
	src := p.snap.Load().cfg.Source
	load := p.loader
	if load == nil {
		load = func() (*config.Config, error) {
			if src == "" || src == EmbeddedSource {
				return nil, errors.New("proxy: the running config has no file to re-read: start kvgate with a config FILE")
			}
			return config.Load(src)
		}
	}
	cfg, err := load()
	if err == nil {
		err = p.Reload(cfg)
	} else {
		p.metrics.reloads.WithLabel("error").Add(1)
		p.status.recordReload(src, err)
	}
	if err != nil {
		p.log.Error("reload refused; keeping the running config", "config", src, "err", err.Error())
		return err
	}
	p.log.Info("config reloaded", "config", cfg.Source)
	return nil
}

// EmbeddedSource is the Source of the configuration built into the binary.
const EmbeddedSource = "embedded quickstart config"

// handleReload serves POST /reload: it reads the configuration again, as
// ReloadSource does. 200 on success; 422 with the errors otherwise.
func (p *Proxy) handleReload(w http.ResponseWriter, _ *http.Request) {
	src := p.snap.Load().cfg.Source
	if src == "" || src == EmbeddedSource {
		http.Error(w, "kvgate runs on its embedded default config, which has no file to re-read: start it with a config FILE\n", http.StatusUnprocessableEntity)
		return
	}
	if err := p.ReloadSource(); err != nil {
		http.Error(w, fmt.Sprintf("reload refused, the running config stays: %v\n", err), http.StatusUnprocessableEntity)
		return
	}
	fmt.Fprintf(w, "reloaded %s\n", p.snap.Load().cfg.Source)
}
