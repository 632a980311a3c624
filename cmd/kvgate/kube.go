//go:build !nokube

// The Kubernetes mode of run. A build with -tags nokube leaves it out,
// and with it client-go and the API types (kube_off.go): half the
// executable and, since Go maps what package initialisers touch, about
// 17 MiB of resident memory.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"

	adminui "github.com/kvgate/kvgate/admin"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
	"github.com/kvgate/kvgate/kube"
	"github.com/kvgate/kvgate/proxy"
)

func (k *kubeOpts) register(fs *flag.FlagSet) {
	fs.BoolVar(&k.enabled, "kubernetes", false, "serve what a Kubernetes cluster says: its Gateways, HTTPRoutes, InferencePools, AuthorizationPolicies and endpoints, followed as they change")
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "reach the API server as kubeconfig `FILE` says (default: $KUBECONFIG, then the pod's service account)")
	fs.StringVar(&k.controller, "controller-name", kube.DefaultControllerName, "serve the Gateways of GatewayClasses whose spec.controllerName is `NAME`")
	fs.BoolVar(&k.elect, "leader-elect", true, "write Gateway API status only while holding the Lease "+kube.DefaultLeaseName+" in the pod's namespace ($POD_NAMESPACE); every replica serves traffic either way. false: this replica writes status (run one)")
}

// check refuses the Kubernetes flags without --kubernetes.
func (k *kubeOpts) check(fs *flag.FlagSet) error {
	if k.enabled {
		return nil
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err == nil && (f.Name == "kubeconfig" || f.Name == "controller-name" || f.Name == "leader-elect") {
			err = usageError("run: --%s is for the Kubernetes mode: add --kubernetes; %s", f.Name, cmdRun.seeHelp())
		}
	})
	return err
}

// runKube is `kvgate run --kubernetes`: watch the cluster, wait for the
// first configuration (the admin address answers /readyz 503 meanwhile),
// then serve it and follow every change until ctx ends.
func runKube(ctx context.Context, o *serveOpts, log *slog.Logger) error {
	klog.SetSlogLogger(log) // client-go logs through klog
	var base *config.Config
	if path := o.src.path; path != "" {
		if data, err := os.ReadFile(path); err == nil && adapt.IsManifest(data) {
			return usageError("run: %s holds Kubernetes manifests, but --kubernetes reads them from the cluster: give a kvgate config (for admin, limits, accessLog, ...) or no FILE", path)
		}
		var err error
		if base, err = config.Load(path); err != nil {
			return err
		}
		if len(base.Routes)+len(base.Pools)+len(base.Authorization) > 0 {
			log.Info("kubernetes: the routes, pools and authorization of the config file are not used; the cluster's are", "config", path)
		}
	}
	rc, err := kube.RESTConfig(o.kube.kubeconfig)
	if err != nil {
		return err
	}
	ctl, err := kube.New(rc, kube.Options{
		ControllerName: o.kube.controller,
		Adapt:          o.src.adapt,
		Base:           base,
		Admin:          o.src.admin,
		Log:            log,
		LeaderElection: kube.LeaderElection{Disabled: !o.kube.elect},
		Addresses:      podAddresses(),
	})
	if err != nil {
		return err
	}
	kctx, stopKube := context.WithCancel(ctx)
	defer stopKube()
	if err := ctl.Start(kctx); err != nil {
		return err
	}
	admin := o.src.admin
	if admin == "" && base != nil {
		admin = base.Admin.Address
	}
	if admin == "" {
		admin = config.DefaultAdminAddress
	}
	standIn, err := startWaitingAdmin(admin, ctl.Status)
	if err != nil {
		return err
	}
	cfg, err := ctl.First(ctx)
	standIn.close()
	if err != nil {
		if ctx.Err() != nil {
			log.Info("kvgate stopped before the first configuration")
			return nil
		}
		return err
	}
	p, err := proxy.New(cfg, log)
	if err != nil {
		return err
	}
	p.SetLoader(ctl.Load)
	p.SetAdminUI(adminui.Handler(p, buildVersion()))
	if err := p.Start(); err != nil {
		return err
	}
	log.Info("kvgate started", "version", buildVersion(), "config", cfg.Source, "controllerName", o.kube.controller)
	done := make(chan struct{})
	go func() { ctl.Run(kctx, p); close(done) }()
	serveUntilDone(ctx, p, cfg, log)
	stopKube()
	<-done
	return nil
}

// waitingAdmin serves the admin address until the proxy takes it over:
// /livez 200, /readyz 503 with why kvgate is not ready yet.
type waitingAdmin struct {
	srv *http.Server
	ln  net.Listener
}

func startWaitingAdmin(addr string, status func() error) (*waitingAdmin, error) {
	if addr == "off" {
		return &waitingAdmin{}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener on %s: %w (give --admin a free HOST:PORT)", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		why := status()
		if why == nil {
			why = errors.New("starting the proxy")
		}
		http.Error(w, "not ready: "+why.Error(), http.StatusServiceUnavailable)
	})
	w := &waitingAdmin{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

// close frees the address for the proxy's admin listener.
func (w *waitingAdmin) close() {
	if w.srv != nil {
		_ = w.srv.Close()
	}
}

// podAddresses are the addresses a Gateway's status reports for listeners
// bound to every address: $POD_IP (the chart sets it from the downward
// API; with hostNetwork it is the node's IP), or none.
func podAddresses() []string {
	var out []string
	for _, a := range strings.Split(os.Getenv("POD_IP"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
