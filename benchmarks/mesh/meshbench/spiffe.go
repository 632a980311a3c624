package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// idList is the repeated --id NAME=SPIFFE-ID flag.
type idList []struct{ name, id string }

func (l *idList) String() string { return fmt.Sprint(*l) }
func (l *idList) Set(v string) error {
	name, id, ok := strings.Cut(v, "=")
	if !ok || name == "" || strings.ContainsAny(name, "/.") {
		return fmt.Errorf("%q: write NAME=spiffe://TRUST-DOMAIN/PATH (NAME: a plain file name)", v)
	}
	if _, err := spiffeid.FromString(id); err != nil {
		return fmt.Errorf("%q: %v", v, err)
	}
	*l = append(*l, struct{ name, id string }{name, id})
	return nil
}

type spiffeOpts struct {
	dir       string
	ids       idList
	dnsNames  string
	validity  time.Duration
	writeOnly bool
}

func (o *spiffeOpts) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("spiffe", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "`DIR` to write DIR/NAME/{svid.0.pem,svid.0.key,bundle.0.pem,combined.pem} and serve DIR/NAME.sock in")
	fs.Var(&o.ids, "id", "an identity `NAME=spiffe://TD/PATH` (repeat; all in one trust domain)")
	fs.StringVar(&o.dnsNames, "dns", "", "comma-separated DNS `NAMES` added to every SVID (for TLS clients that check a host name, like nginx)")
	fs.DurationVar(&o.validity, "validity", 24*time.Hour, "SVID lifetime")
	fs.BoolVar(&o.writeOnly, "write-only", false, "write the files and exit instead of serving Workload API sockets")
	return fs
}

// runSPIFFE issues one CA for the identities' trust domain and an X.509 SVID
// per identity, writes each in the layout of `spire-agent api fetch x509
// -write` (which kvgate's identity.files reads), plus combined.pem (chain and
// key, for HAProxy), and unless --write-only serves each SVID on its own
// Workload API socket DIR/NAME.sock until interrupted: a stand-in for a SPIRE
// agent that has attested each workload, for one machine.
func runSPIFFE(ctx context.Context, args []string, stdout io.Writer) error {
	var o spiffeOpts
	if err := parseFlags(o.flagSet(), args, stdout); err != nil {
		return err
	}
	if o.dir == "" || len(o.ids) == 0 {
		return usageError{"spiffe: --dir and at least one --id NAME=spiffe://TD/PATH are required"}
	}
	td := spiffeid.RequireFromString(o.ids[0].id).TrustDomain()
	for _, id := range o.ids {
		if got := spiffeid.RequireFromString(id.id).TrustDomain(); got != td {
			return usageError{fmt.Sprintf("spiffe: %s is in trust domain %s, not %s: give one trust domain", id.id, got, td)}
		}
	}
	var dns []string
	for _, d := range strings.Split(o.dnsNames, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dns = append(dns, d)
		}
	}
	ca, err := newIssuer(td, o.validity)
	if err != nil {
		return err
	}
	var resps []*workload.X509SVIDResponse
	for _, id := range o.ids {
		r, err := ca.issue(filepath.Join(o.dir, id.name), id.id, dns)
		if err != nil {
			return err
		}
		resps = append(resps, r)
	}
	if o.writeOnly {
		return nil
	}
	var servers []*grpc.Server
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	socks := map[string]string{}
	for i, id := range o.ids {
		path := filepath.Join(o.dir, id.name+".sock")
		os.Remove(path)
		ln, err := net.Listen("unix", path)
		if err != nil {
			return fmt.Errorf("spiffe: %w (a unix socket path must be under about 100 bytes)", err)
		}
		s := grpc.NewServer()
		workload.RegisterSpiffeWorkloadAPIServer(s, &workloadAPI{resp: resps[i]})
		servers = append(servers, s)
		go s.Serve(ln)
		socks[id.name] = "unix://" + path
	}
	line, _ := json.Marshal(map[string]any{"msg": "serving the Workload API", "sockets": socks})
	fmt.Fprintf(stdout, "%s\n", line)
	<-ctx.Done()
	return nil
}

// workloadAPI serves one fixed SVID, as an agent does for one attested
// workload. It answers only FetchX509SVID (what kvgate and go-spiffe's
// X509Source use); the other calls are Unimplemented.
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	resp *workload.X509SVIDResponse
}

func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	if err := stream.Send(w.resp); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// issuer is a self-signed CA for one trust domain.
type issuer struct {
	td       spiffeid.TrustDomain
	cert     *x509.Certificate
	key      crypto.Signer
	validity time.Duration
}

func newIssuer(td spiffeid.TrustDomain, validity time.Duration) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{Organization: []string{"kvgate mesh benchmark"}, CommonName: td.Name() + " root"},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity + time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("spiffe: CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issuer{td: td, cert: cert, key: key, validity: validity}, nil
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

// issue makes an SVID for id, writes it under dir and returns it as a
// Workload API response.
func (ca *issuer) issue(dir, id string, dns []string) (*workload.X509SVIDResponse, error) {
	sid := spiffeid.RequireFromString(id)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		URIs:         []*url.URL{sid.URL()},
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(ca.validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("spiffe: SVID %s: %w", id, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spiffe: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"bundle.0.pem", caPEM, 0o644},
		{"svid.0.key", keyPEM, 0o644}, // the benchmark's throwaway key: readable by nginx's and HAProxy's workers
		{"combined.pem", append(append([]byte{}, certPEM...), keyPEM...), 0o644},
		{"svid.0.pem", certPEM, 0o644}, // last: kvgate's watcher keys on it
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("spiffe: %w", err)
		}
	}
	return &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: sid.String(), X509Svid: der, X509SvidKey: pkcs8, Bundle: ca.cert.Raw,
	}}}, nil
}
