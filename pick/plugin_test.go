package pick

import (
	"slices"
	"testing"
)

// Every registered plugin constructs a value of its kind and says what it
// does; every preset is made of plugins of the right kinds and builds.
func TestRegistry(t *testing.T) {
	for _, p := range Plugins() {
		if p.Doc == "" {
			t.Errorf("%s %s has no doc line", p.Kind, p.Name)
		}
		if registry[p.Name] != p {
			t.Errorf("registry[%q] is not %v", p.Name, p)
		}
		var ok bool
		switch v := p.make(); p.Kind {
		case KindFilter:
			_, ok = v.(Filter)
		case KindScorer:
			_, ok = v.(Scorer)
		case KindPicker:
			_, ok = v.(Picker)
		}
		if !ok {
			t.Errorf("%s %s does not make a %s", p.Kind, p.Name, p.Kind)
		}
	}
	// Messages and the config golden files list scorers in this order.
	want := []string{"prefix", "queue", "queue-minmax", "kv-utilization", "inflight-requests", "inflight-tokens", "lora"}
	if got := Names(KindScorer); !slices.Equal(got, want) {
		t.Errorf("scorers %v, want %v", got, want)
	}
	for _, pr := range Presets() {
		if pr.Doc == "" || pr.Picker == nil || pr.Picker.Kind != KindPicker {
			t.Errorf("preset %s: no doc or no picker", pr.Name)
		}
		for _, f := range pr.Filters {
			if f.Kind != KindFilter {
				t.Errorf("preset %s: filter %s is a %s", pr.Name, f.Name, f.Kind)
			}
		}
		for _, s := range pr.Scorers {
			if s.Plugin.Kind != KindScorer {
				t.Errorf("preset %s: scorer %s is a %s", pr.Name, s.Plugin.Name, s.Plugin.Kind)
			}
		}
		o := testOptions()
		o.Preset = pr.Name
		if _, err := NewPool(o); err != nil {
			t.Errorf("preset %s: %v", pr.Name, err)
		}
		_, err := NewPool(Options{Balancer: pr.Name})
		if (err == nil) != pr.Balancer {
			t.Errorf("preset %s as a balancer: %v; Balancer is %v", pr.Name, err, pr.Balancer)
		}
	}
	if _, err := NewScorer("queue-length"); err == nil {
		t.Error("unknown scorer constructed")
	}
}

// A plain pool's balancers keep the proxy's semantics: least request among
// two random endpoints, round robin, ejected endpoints skipped, and a
// retry's failed endpoint avoided unless it is the only one left.
func TestBalancers(t *testing.T) {
	t.Run("least-request", func(t *testing.T) {
		p, eps := testPool(t, 2, func(o *Options) { *o = plainOptions() })
		for range 3 {
			eps[0].Begin(0)
		}
		// Two random choices over two endpoints see eps[1] three times in
		// four, and take it whenever they do.
		n := 0
		for range 400 {
			d := balance(p, eps, nil)
			if d.Endpoint == eps[1] {
				n++
			}
			d.Endpoint.End(0)
		}
		if n < 250 {
			t.Errorf("the less loaded endpoint got %d of 400, want about 300", n)
		}
	})
	t.Run("round-robin", func(t *testing.T) {
		p, eps := testPool(t, 3, func(o *Options) { *o = Options{Balancer: "round-robin"} })
		for i := range 6 {
			d := balance(p, eps, nil)
			if d.Endpoint != eps[i%3] {
				t.Fatalf("pick %d went to %s", i, d.Endpoint.Addr)
			}
			d.Endpoint.End(0)
		}
	})
	t.Run("ejected and avoided", func(t *testing.T) {
		p, eps := testPool(t, 3, func(o *Options) { *o = plainOptions() })
		for range EjectAfterFails {
			eps[0].ObserveConnect(true)
		}
		for range 50 {
			d := balance(p, eps, eps[1])
			if d.Endpoint != eps[2] {
				t.Fatalf("picked %s; want the one endpoint neither ejected nor avoided", d.Endpoint.Addr)
			}
			d.Endpoint.End(0)
		}
		for range EjectAfterFails {
			eps[2].ObserveConnect(true)
		}
		if d := balance(p, eps, eps[1]); d.Endpoint != eps[1] {
			t.Fatalf("picked %v; want the avoided endpoint, the only one not ejected", d.Endpoint)
		} else {
			d.Endpoint.End(0)
		}
		for range EjectAfterFails {
			eps[1].ObserveConnect(true)
		}
		if d := balance(p, eps, nil); d.Endpoint != nil {
			t.Fatalf("every endpoint ejected, yet %s was picked", d.Endpoint.Addr)
		}
	})
}

func balance(p *Pool, eps []*Endpoint, avoid *Endpoint) Decision {
	pc := AcquirePickContext()
	defer ReleasePickContext(pc)
	pc.Req.Avoid = avoid
	return p.Balance(pc, eps)
}
