package kube

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// DefaultLeaseName is the coordination.k8s.io Lease the replicas elect
// their status writer with.
const DefaultLeaseName = "kvgate-status"

// LeaderElection says which replica writes status. Every replica serves
// traffic; only status writing is elected.
type LeaderElection struct {
	// Disabled writes status from this replica without an election
	// (--leader-elect=false: a single replica).
	Disabled bool
	// Namespace of the Lease: default $POD_NAMESPACE, then the pod's
	// service account namespace, then "default".
	Namespace string
	// Name of the Lease; default DefaultLeaseName.
	Name string
	// Identity of this replica: default the hostname (the pod's name) and
	// a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's
	// (default 15s, 10s and 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

func (le *LeaderElection) defaults() {
	if le.Name == "" {
		le.Name = DefaultLeaseName
	}
	if le.Namespace == "" {
		le.Namespace = podNamespace()
	}
	if le.Identity == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		le.Identity = cmp.Or(host, "kvgate") + "-" + hex.EncodeToString(b)
	}
	le.LeaseDuration = cmp.Or(le.LeaseDuration, 15*time.Second)
	le.RenewDeadline = cmp.Or(le.RenewDeadline, 10*time.Second)
	le.RetryPeriod = cmp.Or(le.RetryPeriod, 2*time.Second)
}

// podNamespace is the namespace kvgate runs in, as far as it can tell.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// elect runs write while this replica holds the Lease, campaigning again
// whenever it loses it, until ctx ends; the Lease is released then.
func (c *Controller) elect(ctx context.Context, rc *rest.Config, write func(context.Context)) {
	le := c.opts.LeaderElection
	if le.Disabled {
		c.leading.Store(true)
		write(ctx)
		return
	}
	client, err := coordinationv1.NewForConfig(rc)
	if err != nil {
		c.log.Error("kubernetes: no status writing: Lease client", "err", err.Error())
		return
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				c.leading.Store(true)
				c.log.Info("kubernetes: this replica writes status (it holds the Lease)", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				c.markStatus()
				write(lctx)
			},
			OnStoppedLeading: func() {
				if c.leading.Swap(false) {
					c.log.Info("kubernetes: this replica no longer writes status", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				}
			},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					c.log.Info("kubernetes: another replica writes status", "lease", le.Namespace+"/"+le.Name, "leader", id)
				}
			},
		},
	})
	if err != nil {
		c.log.Error("kubernetes: no status writing: leader election", "err", err.Error())
		return
	}
	for ctx.Err() == nil {
		elector.Run(ctx) // returns when the Lease is lost or ctx ends
	}
}
