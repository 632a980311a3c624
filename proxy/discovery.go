package proxy

import (
	"fmt"
	"net"
)

// SetEndpoints replaces the endpoint list of the running pool named pool
// without a reload: the route table, the policies and the other pools stay
// as they are. It is for a discovery source (kvgate run --kubernetes) whose
// endpoint-only changes need no new snapshot. As with a reload, endpoints
// that stay keep their state (in flight, health, prefix index), requests in
// flight on a removed endpoint finish, and an empty list makes the pool
// answer 503 until endpoints come back. The next Reload sets the list its
// configuration gives. A DNS pool (its resolver owns the list) and an
// unknown pool are errors; so is an address that is not host:port.
func (p *Proxy) SetEndpoints(pool string, addrs []string) error {
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("proxy: pool %s: endpoint %q is not host:port", pool, a)
		}
	}
	u := p.ups
	u.mu.Lock() // no reload swaps the pool meanwhile
	defer u.mu.Unlock()
	pl := u.pools[pool]
	switch {
	case pl == nil:
		return fmt.Errorf("proxy: no pool %s in the running configuration", pool)
	case pl.cfg.DNS != "":
		return fmt.Errorf("proxy: pool %s takes its endpoints from dns %s", pool, pl.cfg.DNS)
	}
	pl.setEndpoints(addrs)
	return nil
}
