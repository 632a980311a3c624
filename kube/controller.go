package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/config/adapt"
)

// DefaultControllerName is the GatewayClass controllerName kvgate serves.
const DefaultControllerName = "kvgate.dev/gateway"

// Options configures a Controller. The zero value of each field means its
// default.
type Options struct {
	// ControllerName selects the GatewayClasses whose Gateways are served
	// (--controller-name); default DefaultControllerName.
	ControllerName string
	// Adapt are the translation's options (--bind, --listen, --labels,
	// --endpoints, --cert); Live is set here.
	Adapt adapt.Options
	// Base, when set, gives the sections the cluster does not: admin,
	// identity, limits, paths, accessLog, tracing and drainTimeout (kvgate
	// run --kubernetes FILE). It must be defaulted (config.Load does);
	// its listeners, routes, pools and authorization are not used.
	Base *config.Config
	// Admin, when set, replaces admin.address (run --admin).
	Admin string
	// Debounce is how long a burst of changes must be quiet before it is
	// translated (default 100ms); MaxDelay bounds the wait after the first
	// change of a burst (default 1s).
	Debounce, MaxDelay time.Duration
	// SecretRefresh is how often listener Secrets are read again (default 1m).
	SecretRefresh time.Duration
	// Rediscover is how often resources that were not served are looked
	// for again (a CRD installed after start); default 1m.
	Rediscover time.Duration
	// LeaderElection chooses the replica that writes status (--leader-elect).
	LeaderElection LeaderElection
	// Addresses are reported in a Gateway's status.addresses for its
	// listeners bound to every address (--bind 0.0.0.0): the pod's or
	// node's IP ($POD_IP in kvgate run). A listener bound to one address
	// reports that one.
	Addresses []string
	// Log receives what happens; default slog.Default().
	Log *slog.Logger
}

// Target is what a Controller configures: *proxy.Proxy.
type Target interface {
	// Reload swaps in a whole configuration.
	Reload(*config.Config) error
	// SetEndpoints replaces one pool's endpoints without a reload.
	SetEndpoints(pool string, addrs []string) error
}

// Controller watches a cluster and translates what it serves. Start it,
// take the first configuration from First, then Run it against the proxy.
type Controller struct {
	opts    Options
	log     *slog.Logger
	dyn     dynamic.Interface
	disc    *discoverer
	secrets *secretFiles
	source  string
	rc      *rest.Config

	mu        sync.Mutex
	informers map[string]*informer
	logged    map[string]bool // once: messages already logged
	warned    map[string]bool // translation warnings of the last translation
	status    error           // why there is no configuration (nil: there is)
	applied   *config.Config  // the configuration the target runs (nil: unknown)
	listeners []config.Listener

	dirty chan struct{} // something changed (capacity 1)
	kick  chan struct{} // the wanted Secrets changed (capacity 1)
	ctx   context.Context

	// status writing (status.go, leader.go)
	last         translation   // what the last translation said (under mu)
	statusDirty  chan struct{} // status may differ (capacity 1)
	leading      atomic.Bool   // this replica writes status
	statusWrites atomic.Int64  // status updates made
}

// New prepares a Controller for the API server rc names. Nothing is
// contacted before Start.
func New(rc *rest.Config, opts Options) (*Controller, error) {
	if opts.ControllerName == "" {
		opts.ControllerName = DefaultControllerName
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Second
	}
	if opts.SecretRefresh <= 0 {
		opts.SecretRefresh = time.Minute
	}
	if opts.Rediscover <= 0 {
		opts.Rediscover = time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	opts.Adapt.Live = true
	opts.LeaderElection.defaults()
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kube: client for %s: %w", rc.Host, err)
	}
	disc, err := newDiscoverer(rc)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		opts: opts, log: opts.Log, dyn: dyn, disc: disc, source: "kubernetes " + rc.Host, rc: rc,
		informers: map[string]*informer{}, logged: map[string]bool{}, warned: map[string]bool{},
		status: errors.New("waiting for the first list of every watched resource"),
		dirty:  make(chan struct{}, 1), kick: make(chan struct{}, 1), statusDirty: make(chan struct{}, 1),
	}
	if c.secrets, err = newSecretFiles(c, dyn); err != nil {
		return nil, err
	}
	return c, nil
}

// Start finds which resources the API server serves and starts a watch on
// each; it returns once they are started, not synced. The watches stop, and
// the listener certificate files are removed, when ctx ends. A resource
// that is not served or not readable is logged once and left out (and
// looked for again every Options.Rediscover); only a core resource kvgate
// cannot list is an error.
func (c *Controller) Start(ctx context.Context) error {
	c.ctx = ctx
	if err := c.discover(ctx, true); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		c.secrets.close()
	}()
	go c.secretLoop(ctx)
	go c.rediscoverLoop(ctx)
	go c.elect(ctx, c.rc, c.writeStatus)
	return nil
}

// discover starts the watch of each kind not watched yet that the API
// server now serves.
func (c *Controller) discover(ctx context.Context, first bool) error {
	for _, k := range kinds {
		if c.started(k.key) {
			continue
		}
		version, err := c.servedVersion(ctx, &k.spec)
		if err != nil {
			if errors.Is(err, errNotServed) {
				c.once("missing "+k.key, func() {
					c.log.Warn("kubernetes: resource not installed; carrying on without it (its objects are ignored until it is)",
						"resource", k.spec.what(k.spec.versions[0]), "kind", k.spec.kind)
				})
				continue
			}
			if first {
				return fmt.Errorf("kube: discovery of %s: %w", k.spec.what(k.spec.versions[0]), err)
			}
			c.log.Warn("kubernetes: discovery failed; trying again later", "resource", k.spec.what(k.spec.versions[0]), "err", err.Error())
			continue
		}
		gvr := schema.GroupVersionResource{Group: k.spec.group, Version: version, Resource: k.spec.resource}
		if err := c.canList(ctx, gvr); err != nil {
			if k.spec.core && !apierrors.IsForbidden(err) && first {
				return fmt.Errorf("kube: list %s: %w", k.spec.what(version), err)
			}
			c.once("unreadable "+k.key, func() {
				c.log.Warn("kubernetes: resource not readable; carrying on without it (grant kvgate list and watch on it)",
					"resource", k.spec.what(version), "err", err.Error())
			})
			continue
		}
		in, err := c.newInformer(k.key, k.spec, gvr)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.informers[k.key] = in
		c.mu.Unlock()
		go in.inf.RunWithContext(ctx)
		go func() {
			if cache.WaitForCacheSync(ctx.Done(), in.inf.HasSynced) {
				in.synced.Store(true)
				c.markDirty()
			}
		}()
		if !first {
			c.log.Info("kubernetes: resource now installed; watching it", "resource", k.spec.what(version))
		}
	}
	return nil
}

// servedVersion is the first of spec's versions the API server serves.
func (c *Controller) servedVersion(ctx context.Context, spec *kindSpec) (string, error) {
	if spec.core {
		return spec.versions[0], nil
	}
	for _, v := range spec.versions {
		err := c.disc.served(ctx, spec.group, v, spec.resource)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, errNotServed) {
			return "", err
		}
	}
	return "", errNotServed
}

// canList lists one object, to find out before watching that kvgate may.
func (c *Controller) canList(ctx context.Context, gvr schema.GroupVersionResource) error {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := c.dyn.Resource(gvr).List(lctx, metav1.ListOptions{Limit: 1})
	return err
}

func (c *Controller) rediscoverLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.Rediscover)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.discover(ctx, false)
		}
	}
}

func (c *Controller) secretLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.SecretRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		if c.secrets.refresh(ctx) {
			c.markDirty()
		}
	}
}

// informer is the running, synced informer of key, or nil.
func (c *Controller) informer(key string) *informer {
	c.mu.Lock()
	in := c.informers[key]
	c.mu.Unlock()
	if in == nil || !in.synced.Load() {
		return nil
	}
	return in
}

// started reports whether key has an informer, synced or not.
func (c *Controller) started(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.informers[key] != nil
}

// changed is every informer event.
func (c *Controller) changed(in *informer) {
	if in.synced.Load() {
		c.markDirty()
	}
}

func (c *Controller) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// once runs log the first time key is seen (bounded: the memory of what
// was logged is forgotten past 10,000 messages).
func (c *Controller) once(key string, log func()) {
	c.mu.Lock()
	seen := c.logged[key]
	if !seen {
		if len(c.logged) >= 10000 {
			c.logged = map[string]bool{}
		}
		c.logged[key] = true
	}
	c.mu.Unlock()
	if !seen {
		log()
	}
}

// allSynced reports whether every started informer has its first list.
func (c *Controller) allSynced() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range c.informers {
		if !in.synced.Load() && !in.forbidden.Load() {
			return false
		}
	}
	return true
}

// Status is nil once a configuration was translated, else why not yet: a
// readiness check before the proxy runs.
func (c *Controller) Status() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// First waits for every watch's first list, then returns the first
// configuration that translates and validates; until then it logs why not
// (once per reason) and waits for changes. It ends early with ctx.
func (c *Controller) First(ctx context.Context) (*config.Config, error) {
	for range 1 << 30 { // bounded: each turn waits for a change or ctx
		if c.allSynced() {
			cfg, err := c.translate(ctx, true)
			if err == nil {
				c.mu.Lock()
				c.applied, c.listeners = cfg, cfg.Listeners
				c.mu.Unlock()
				c.markStatus() // now Programmed
				c.log.Info("kubernetes: first configuration", "source", cfg.Source, "listeners", len(cfg.Listeners), "routes", len(cfg.Routes), "pools", len(cfg.Pools))
				return cfg, nil
			}
			if !isPending(err) {
				c.once("first "+err.Error(), func() {
					c.log.Warn("kubernetes: nothing to serve yet; waiting for the cluster to change", "why", err.Error())
				})
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.dirty:
		case <-time.After(5 * time.Second): // a Secret read may have failed
		}
	}
	return nil, errors.New("kube: gave up waiting for a configuration")
}

// Load translates the cluster's current state, as a proxy.Loader (POST
// /reload and SIGHUP use it). The next change is then applied with a whole
// reload, since the target's configuration is no longer known here.
func (c *Controller) Load() (*config.Config, error) {
	cfg, err := c.translate(c.ctx, false)
	if err == nil {
		c.mu.Lock()
		c.applied = nil
		c.mu.Unlock()
	}
	return cfg, err
}

// translate gathers the objects and adapts them. With syncSecrets the
// listener Secrets are read before (the first configuration fixes the
// listeners); otherwise a change of the Secrets wanted is read in the
// background and translated again after.
func (c *Controller) translate(ctx context.Context, syncSecrets bool) (*config.Config, error) {
	in, err := c.gather()
	if isPending(err) {
		return nil, err // a watch just started: its first list will mark a change
	}
	if err != nil {
		c.setStatus(err)
		c.record(nil, nil)
		return nil, err
	}
	if c.secrets.want(in.secrets) {
		if syncSecrets {
			c.secrets.refresh(ctx)
		} else {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
	opts := c.opts.Adapt
	opts.Certs = c.secrets.certs()
	for k, v := range c.opts.Adapt.Certs { // --cert wins
		opts.Certs[k] = v
	}
	res, err := adapt.FromObjects(in.objs, c.source, opts)
	var warns []adapt.Warning
	if res != nil {
		warns = res.Warnings
	}
	c.logWarnings(warns)
	c.record(res, err)
	if err != nil {
		err = fmt.Errorf("kube: the cluster's objects do not translate: %w", err)
		c.setStatus(err)
		return nil, err
	}
	cfg := res.Config
	if b := c.opts.Base; b != nil {
		cfg.Admin, cfg.Identity, cfg.Limits, cfg.Paths = b.Admin, b.Identity, b.Limits, b.Paths
		cfg.AccessLog, cfg.Tracing, cfg.DrainTimeout = b.AccessLog, b.Tracing, b.DrainTimeout
	}
	if c.opts.Admin != "" {
		cfg.Admin.Address = c.opts.Admin
	}
	if c.opts.Base != nil || c.opts.Admin != "" {
		if err := config.Validate(cfg); err != nil {
			err = fmt.Errorf("kube: the cluster's configuration with %s: %w", c.baseName(), err)
			c.setStatus(err)
			return nil, err
		}
	}
	c.setStatus(nil)
	return cfg, nil
}

func (c *Controller) setStatus(err error) {
	c.mu.Lock()
	c.status = err
	c.mu.Unlock()
}

// logWarnings logs each warning that the previous translation did not have.
func (c *Controller) logWarnings(ws []adapt.Warning) {
	cur := make(map[string]bool, len(ws))
	var fresh []string
	c.mu.Lock()
	for _, w := range ws {
		s := w.String()
		if !cur[s] && !c.warned[s] {
			fresh = append(fresh, s)
		}
		cur[s] = true
	}
	c.warned = cur
	c.mu.Unlock()
	for _, s := range fresh {
		c.log.Warn("kubernetes: object not fully honoured", "warning", s)
	}
}

// Run applies every change to t until ctx ends: changes are coalesced
// (Options.Debounce, Options.MaxDelay), translated, and applied as a
// Reload, or as SetEndpoints calls when only endpoints changed. A state that
// does not translate keeps t's configuration and is logged once.
func (c *Controller) Run(ctx context.Context, t Target) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.dirty:
		}
		if !c.settle(ctx, c.dirty) {
			return
		}
		c.apply(t)
	}
}

// settle waits until changes (on dirty) pause for Debounce, or MaxDelay
// has passed.
func (c *Controller) settle(ctx context.Context, dirty chan struct{}) bool {
	quiet := time.NewTimer(c.opts.Debounce)
	defer quiet.Stop()
	limit := time.NewTimer(c.opts.MaxDelay)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-dirty:
			quiet.Reset(c.opts.Debounce)
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		}
	}
}

// apply translates the current state and hands it to t.
func (c *Controller) apply(t Target) {
	start := time.Now()
	cfg, err := c.translate(c.ctx, false)
	if isPending(err) {
		c.log.Debug("kubernetes: keeping the running configuration until a new watch has listed", "why", err.Error())
		return
	}
	if err != nil {
		c.once("apply "+err.Error(), func() {
			c.log.Error("kubernetes: keeping the running configuration", "err", err.Error())
		})
		return
	}
	c.mu.Lock()
	prev, listeners := c.applied, c.listeners
	c.mu.Unlock()
	if !reflect.DeepEqual(cfg.Listeners, listeners) {
		c.once(fmt.Sprintf("listeners %v", cfg.Listeners), func() {
			c.log.Error("kubernetes: the Gateway listeners changed; restart kvgate to serve them (routes, pools and policies are applied now)",
				"running", listenerNames(listeners), "cluster", listenerNames(cfg.Listeners))
		})
	}
	if prev != nil {
		if pools, ok := endpointChanges(prev, cfg); ok {
			if len(pools) == 0 {
				return // nothing kvgate serves changed
			}
			if c.setEndpoints(t, cfg, pools) {
				c.mu.Lock()
				c.applied = cfg
				c.mu.Unlock()
				c.log.Debug("kubernetes: endpoints applied", "pools", pools, "took", time.Since(start).String())
				return
			}
		}
	}
	if err := t.Reload(cfg); err != nil {
		c.once("reload "+err.Error(), func() {
			c.log.Error("kubernetes: keeping the running configuration", "err", err.Error())
		})
		return
	}
	c.mu.Lock()
	c.applied = cfg
	c.mu.Unlock()
	c.log.Info("kubernetes: configuration applied", "routes", len(cfg.Routes), "pools", len(cfg.Pools), "took", time.Since(start).String())
}

// setEndpoints gives t the endpoints of pools; false if any failed (a
// reload then sets them all).
func (c *Controller) setEndpoints(t Target, cfg *config.Config, pools []string) bool {
	for _, name := range pools {
		i := slices.IndexFunc(cfg.Pools, func(p config.Pool) bool { return p.Name == name })
		if err := t.SetEndpoints(name, cfg.Pools[i].Endpoints); err != nil {
			c.log.Warn("kubernetes: endpoint update refused; reloading instead", "pool", name, "err", err.Error())
			return false
		}
	}
	return true
}

// endpointChanges reports whether next differs from prev in pool endpoints
// only, and then which pools changed.
func endpointChanges(prev, next *config.Config) ([]string, bool) {
	if len(prev.Pools) != len(next.Pools) {
		return nil, false
	}
	a, b := *prev, *next
	a.Pools, b.Pools = nil, nil
	if !reflect.DeepEqual(a, b) {
		return nil, false
	}
	var changed []string
	for i := range prev.Pools {
		pa, pb := prev.Pools[i], next.Pools[i]
		ea, eb := pa.Endpoints, pb.Endpoints
		pa.Endpoints, pb.Endpoints = nil, nil
		if !reflect.DeepEqual(pa, pb) || pb.DNS != "" {
			return nil, false
		}
		if !slices.Equal(ea, eb) {
			changed = append(changed, pb.Name)
		}
	}
	return changed, true
}

func listenerNames(ls []config.Listener) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name + "@" + l.Address
	}
	return out
}

// baseName says what was added to the cluster's configuration, for errors.
func (c *Controller) baseName() string {
	var parts []string
	if c.opts.Base != nil {
		parts = append(parts, "the sections of "+c.opts.Base.Source)
	}
	if c.opts.Admin != "" {
		parts = append(parts, "--admin "+c.opts.Admin)
	}
	return strings.Join(parts, " and ")
}
