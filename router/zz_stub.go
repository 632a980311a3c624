package router

// TEMPORARY: minimal table used by the proxy until the full router lands.

import (
	"strings"

	"github.com/kvgate/kvgate/config"
)

type Request interface {
	Host() string
	Method() string
	Path() string
	Header(name string) string
	Query(name string) (string, bool)
	Model() string
}

type Table struct{ routes []*Route }

type Backend struct {
	Pool   string
	Weight int
}

type Route struct {
	Name      string
	Backends  []Backend
	Timeouts  config.Timeouts
	listeners []string
	prefix    string
}

func Compile(c *config.Config) (*Table, error) {
	t := &Table{}
	for _, r := range c.Routes {
		rt := &Route{Name: r.Name, listeners: r.Listeners, prefix: "/"}
		if len(r.Matches) > 0 && r.Matches[0].Path != nil {
			rt.prefix = r.Matches[0].Path.Value
		}
		if r.Timeouts != nil {
			rt.Timeouts = *r.Timeouts
		}
		for _, b := range r.Backends {
			w := 1
			if b.Weight != nil {
				w = *b.Weight
			}
			rt.Backends = append(rt.Backends, Backend{Pool: b.Pool, Weight: w})
		}
		t.routes = append(t.routes, rt)
	}
	return t, nil
}

func (t *Table) Match(listener string, r Request) *Route {
	for _, rt := range t.routes {
		if len(rt.listeners) > 0 {
			ok := false
			for _, l := range rt.listeners {
				ok = ok || l == listener
			}
			if !ok {
				continue
			}
		}
		if strings.HasPrefix(r.Path(), rt.prefix) {
			return rt
		}
	}
	return nil
}

func (t *Table) NeedsModel(listener string) bool { return false }

func (r *Route) PickBackend(key, rnd uint64) *Backend {
	total := 0
	for _, b := range r.Backends {
		total += b.Weight
	}
	if total == 0 {
		return nil
	}
	n := int(rnd % uint64(total))
	for i := range r.Backends {
		n -= r.Backends[i].Weight
		if n < 0 {
			return &r.Backends[i]
		}
	}
	return nil
}

func (r *Route) StickyKey(req Request) uint64 { return 0 }
