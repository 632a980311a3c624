package adapt

import (
	"flag"
	"fmt"
	"strings"
)

// RegisterFlags adds --endpoints, --cert, --labels, --listen and --bind to
// fs, filling opts. Each of the first four may be repeated.
func RegisterFlags(fs *flag.FlagSet, opts *Options) {
	fs.Var(endpointsFlag{opts}, "endpoints", "POOL=ADDR,ADDR: endpoints of an adapted pool (InferencePool name, <service>-<port> or Service name); repeatable")
	fs.Var(certFlag{opts}, "cert", "SECRET=CERT,KEY: PEM files standing for a TLS Secret (name or namespace/name); repeatable")
	fs.Var(labelsFlag{opts}, "labels", "POOL=k=v,k=v: workload labels of a pool (named as for --endpoints), matched by AuthorizationPolicy selectors; repeatable")
	fs.Var(listenFlag{opts}, "listen", "LISTENER=HOST:PORT: address of an adapted listener (<gateway>-<listener>, or default); repeatable")
	fs.StringVar(&opts.Bind, "bind", "0.0.0.0", "host that Gateway listener ports are bound on")
}

// cut splits "KEY=VALUE" and checks both sides are set.
func cut(s, flagName, form string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return "", "", fmt.Errorf("adapt: --%s %q: write it as %s", flagName, s, form)
	}
	return k, v, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

type endpointsFlag struct{ o *Options }

func (f endpointsFlag) String() string { return "" }
func (f endpointsFlag) Set(s string) error {
	k, v, err := cut(s, "endpoints", "POOL=ADDR,ADDR (e.g. vllm=10.0.0.1:8000,10.0.0.2:8000)")
	if err != nil {
		return err
	}
	if f.o.Endpoints == nil {
		f.o.Endpoints = map[string][]string{}
	}
	f.o.Endpoints[k] = append(f.o.Endpoints[k], splitList(v)...)
	return nil
}

type certFlag struct{ o *Options }

func (f certFlag) String() string { return "" }
func (f certFlag) Set(s string) error {
	form := "SECRET=CERT,KEY (e.g. gw-tls=/etc/kvgate/tls.crt,/etc/kvgate/tls.key)"
	k, v, err := cut(s, "cert", form)
	if err != nil {
		return err
	}
	files := splitList(v)
	if len(files) != 2 {
		return fmt.Errorf("adapt: --cert %q: write it as %s", s, form)
	}
	if f.o.Certs == nil {
		f.o.Certs = map[string]CertFiles{}
	}
	f.o.Certs[k] = CertFiles{Cert: files[0], Key: files[1]}
	return nil
}

type labelsFlag struct{ o *Options }

func (f labelsFlag) String() string { return "" }
func (f labelsFlag) Set(s string) error {
	form := "POOL=k=v,k=v (e.g. vllm=app=vllm,tier=gpu)"
	k, v, err := cut(s, "labels", form)
	if err != nil {
		return err
	}
	if f.o.Labels == nil {
		f.o.Labels = map[string]map[string]string{}
	}
	if f.o.Labels[k] == nil {
		f.o.Labels[k] = map[string]string{}
	}
	for _, kv := range splitList(v) {
		lk, lv, ok := strings.Cut(kv, "=")
		if !ok || lk == "" {
			return fmt.Errorf("adapt: --labels %q: %q is not k=v; write it as %s", s, kv, form)
		}
		f.o.Labels[k][lk] = lv
	}
	return nil
}

type listenFlag struct{ o *Options }

func (f listenFlag) String() string { return "" }
func (f listenFlag) Set(s string) error {
	k, v, err := cut(s, "listen", "LISTENER=HOST:PORT (e.g. inference-gateway-http=127.0.0.1:8080)")
	if err != nil {
		return err
	}
	if f.o.Listen == nil {
		f.o.Listen = map[string]string{}
	}
	f.o.Listen[k] = v
	return nil
}
