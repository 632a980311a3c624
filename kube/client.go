package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig finds how to reach the API server: the kubeconfig file given,
// else the files in $KUBECONFIG, else the in-cluster service account.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	switch env := os.Getenv("KUBECONFIG"); {
	case kubeconfig != "":
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kube: --kubeconfig %s: %w", kubeconfig, err)
		}
	case env != "":
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kube: KUBECONFIG=%s: %w", env, err)
		}
	default:
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kube: no --kubeconfig, no $KUBECONFIG, and not in a pod (%w): pass --kubeconfig FILE", err)
		}
	}
	rc.QPS, rc.Burst = 50, 100 // start-up lists a dozen resources at once
	rc.UserAgent = "kvgate"
	return rc, nil
}

// discoverer asks the API server which versions of a resource it serves,
// with plain GETs of /apis/GROUP/VERSION (client-go's discovery package
// would bring every typed API into the binary).
type discoverer struct {
	hc   *http.Client
	base *url.URL
}

func newDiscoverer(rc *rest.Config) (*discoverer, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("kube: client for %s: %w", rc.Host, err)
	}
	host := rc.Host
	if host == "" {
		return nil, errors.New("kube: the client config names no API server host")
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme == "" {
		u, err = url.Parse("https://" + host)
	}
	if err != nil {
		return nil, fmt.Errorf("kube: API server host %q: %w", host, err)
	}
	return &discoverer{hc: hc, base: u}, nil
}

// errNotServed is a group version or resource the API server does not serve.
var errNotServed = errors.New("not served")

// served reports whether group/version serves resource; errNotServed when
// it does not, another error when the API server could not say.
func (d *discoverer) served(ctx context.Context, group, version, resource string) error {
	u := *d.base
	u.Path = path.Join(u.Path, "apis", group, version)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return errNotServed
	default:
		return fmt.Errorf("GET %s: %s", u.Path, resp.Status)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("GET %s: %w", u.Path, err)
	}
	for _, r := range list.APIResources {
		if r.Name == resource {
			return nil
		}
	}
	return errNotServed
}
