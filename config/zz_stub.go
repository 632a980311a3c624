package config

// TEMPORARY: replaced by the real loader.

import (
	"bytes"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, path)
}

func Parse(data []byte, source string) (*Config, error) {
	var c Config
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		return nil, err
	}
	c.Source = source
	Default(&c)
	return &c, nil
}

func Default(c *Config) {
	if c.Admin.Address == "" {
		c.Admin.Address = "127.0.0.1:9901"
	}
	for i := range c.Listeners {
		if len(c.Listeners[i].Protocols) == 0 {
			c.Listeners[i].Protocols = []string{"http1", "http2"}
		}
	}
	l := &c.Limits
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 65536
	}
	if l.MaxHeaders == 0 {
		l.MaxHeaders = 100
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = 32 << 20
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(120 * time.Second)
	}
	if l.StreamIdleTimeout == 0 {
		l.StreamIdleTimeout = Duration(300 * time.Second)
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = 100
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = 10000
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = Duration(30 * time.Second)
	}
	if c.AccessLog.Path == "" {
		c.AccessLog.Path = "stdout"
	}
	for i := range c.Pools {
		p := &c.Pools[i]
		if p.Protocol == "" {
			p.Protocol = "http1"
		}
		if p.Balancer == "" {
			p.Balancer = "least-request"
		}
		if p.DialTimeout == 0 {
			p.DialTimeout = Duration(5 * time.Second)
		}
		if p.IdleConnTimeout == 0 {
			p.IdleConnTimeout = Duration(90 * time.Second)
		}
		if p.ResolveInterval == 0 {
			p.ResolveInterval = Duration(5 * time.Second)
		}
	}
}

func Validate(c *Config) error { return nil }

var DefaultYAML = []byte(`
listeners:
  - {name: plain, address: "127.0.0.1:8080"}
routes:
  - {name: default, backends: [{pool: backend}]}
pools:
  - {name: backend, endpoints: ["127.0.0.1:8000"]}
`)
