package proxy

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/kvgate/kvgate/config"
)

// reloadMu serialises file reloads (admin POST /reload, SIGHUP and the file
// watcher may race); Reload itself is a single atomic swap.
var reloadMu sync.Mutex

// ReloadFile reads, validates and compiles the configuration file at path
// and swaps it in atomically. On any error the running configuration keeps
// serving, the error is logged and counted in
// kvgate_config_reloads_total{result="error"}. Listeners and the admin
// address are fixed at start: changes to them wait for a restart.
func (p *Proxy) ReloadFile(path string) error {
	reloadMu.Lock()
	defer reloadMu.Unlock()
	cfg, err := config.Load(path)
	if err == nil {
		err = p.Reload(cfg)
	} else {
		p.metrics.reloads.WithLabel("error").Add(1)
	}
	if err != nil {
		p.log.Error("reload refused; keeping the running config", "config", path, "err", err.Error())
		return err
	}
	p.log.Info("config reloaded", "config", path)
	return nil
}

// EmbeddedSource is the Source of the configuration built into the binary.
const EmbeddedSource = "embedded quickstart config"

// handleReload serves POST /reload: it re-reads the file the running
// configuration came from. 200 on success; 422 with the errors otherwise.
func (p *Proxy) handleReload(w http.ResponseWriter, _ *http.Request) {
	src := p.snap.Load().cfg.Source
	if src == "" || src == EmbeddedSource {
		http.Error(w, "kvgate runs on its embedded default config, which has no file to re-read: start it with --config FILE\n", http.StatusUnprocessableEntity)
		return
	}
	if err := p.ReloadFile(src); err != nil {
		http.Error(w, fmt.Sprintf("reload refused, the running config stays: %v\n", err), http.StatusUnprocessableEntity)
		return
	}
	fmt.Fprintf(w, "reloaded %s\n", src)
}
