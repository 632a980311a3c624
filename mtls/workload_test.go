package mtls_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"github.com/kvgate/kvgate/mtls/spiffetest"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func svidID(t *testing.T, ids mtls.IdentitySource) string {
	t.Helper()
	s, err := ids.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	return s.ID.String()
}

func openWorkload(t *testing.T, addr string) *mtls.WorkloadSource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := mtls.NewWorkloadSource(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func TestWorkloadStartupWaitsThroughPermissionDenied(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	api.Deny(true)
	type res struct {
		ws  *mtls.WorkloadSource
		err error
	}
	done := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ws, err := mtls.NewWorkloadSource(ctx, api.Addr(), nil)
		done <- res{ws, err}
	}()
	waitFor(t, "a refused call", func() bool { return api.Calls() >= 1 })
	api.Deny(false)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.ws.Close()
	if api.Calls() < 2 {
		t.Fatalf("calls = %d: the source did not retry after PermissionDenied", api.Calls())
	}
	if got := svidID(t, r.ws); got != serverID {
		t.Fatalf("SVID %s", got)
	}
}

func TestWorkloadStartupTimeoutSaysWhatToCheck(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	api.Deny(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := mtls.OpenIdentity(ctx, &config.Identity{WorkloadAPI: api.Addr()}, nil)
	if err == nil {
		t.Fatal("no error while the agent denies")
	}
	for _, want := range []string{api.Addr(), "agent is running", "socket is mounted", "registered", "no identity issued"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWorkloadAddressErrors(t *testing.T) {
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "")
	ctx := context.Background()
	if _, err := mtls.NewWorkloadSource(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "SPIFFE_ENDPOINT_SOCKET") {
		t.Errorf("no address: %v", err)
	}
	if _, err := mtls.NewWorkloadSource(ctx, "http://x", nil); err == nil || !strings.Contains(err.Error(), "unix:///") {
		t.Errorf("bad address: %v", err)
	}
}

func TestWorkloadAddressFromEnvAndBarePath(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", api.Addr())
	if got := svidID(t, openWorkload(t, "")); got != serverID {
		t.Fatalf("env: %s", got)
	}
	if got := svidID(t, openWorkload(t, strings.TrimPrefix(api.Addr(), "unix://"))); got != serverID {
		t.Fatalf("bare path: %s", got)
	}
}

func TestWorkloadRotationVisibleToNewHandshakes(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	ws := openWorkload(t, api.Addr())
	srv := spiffeServer(t, "require", ws)
	cli, err := mtls.ClientTLS(&config.UpstreamTLS{TrustDomain: "example.org"}, spiffetest.NewSource(ca.SVID(clientID), ca.Bundle()))
	if err != nil {
		t.Fatal(err)
	}
	if _, c := handshake(t, srv, cli); c.err != nil || mtls.PeerID(&c.state) != serverID {
		t.Fatalf("before rotation: %v", c.err)
	}
	rotated := serverID + "-v2"
	api.SetSVID(ca.SVID(rotated))
	waitFor(t, "rotation", func() bool { return svidID(t, ws) == rotated })
	if _, c := handshake(t, srv, cli); c.err != nil || mtls.PeerID(&c.state) != rotated {
		t.Fatalf("after rotation: %q %v", mtls.PeerID(&c.state), c.err)
	}
}

func TestWorkloadAgentRestart(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	ws := openWorkload(t, api.Addr())
	api.Stop()
	// While the agent is down the last SVID keeps serving.
	if got := svidID(t, ws); got != serverID {
		t.Fatalf("during outage: %s", got)
	}
	rotated := serverID + "-after-restart"
	api.SetSVID(ca.SVID(rotated))
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SVID from the restarted agent", func() bool { return svidID(t, ws) == rotated })
}

func TestWorkloadFederatedBundleChange(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	partner := spiffetest.NewCA("partner.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	ws := openWorkload(t, api.Addr())
	srv := spiffeServer(t, "require", ws)
	cli := spiffeClient(t, serverID, spiffetest.NewSource(partner.SVID("spiffe://partner.org/caller"), ca.Bundle()))
	if s, _ := handshake(t, srv, cli); s.err == nil {
		t.Fatal("partner.org accepted before federation")
	}
	api.SetBundles(ca.Bundle(), partner.Bundle())
	waitFor(t, "federated bundle", func() bool {
		_, err := ws.GetX509BundleForTrustDomain(partner.TD)
		return err == nil
	})
	s, _ := handshake(t, srv, cli)
	if s.err != nil || mtls.PeerID(&s.state) != "spiffe://partner.org/caller" {
		t.Fatalf("after federation: %v", s.err)
	}
	api.SetBundles(ca.Bundle())
	waitFor(t, "federation removed", func() bool {
		_, err := ws.GetX509BundleForTrustDomain(partner.TD)
		return err != nil
	})
	if s, _ := handshake(t, srv, cli); s.err == nil {
		t.Fatal("partner.org accepted after its bundle was removed")
	}
}

// TestFakeAgentRequiresSecurityHeader checks the fake itself: calls without the
// workload.spiffe.io metadata are refused, as SPIRE refuses them.
func TestFakeAgentRequiresSecurityHeader(t *testing.T) {
	ca := spiffetest.NewCA("example.org")
	api := spiffetest.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	conn, err := grpc.NewClient(api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := workload.NewSpiffeWorkloadAPIClient(conn).FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
}
