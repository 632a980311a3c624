package adapt

import (
	"github.com/kvgate/kvgate/config"
	"gopkg.in/yaml.v3"
)

// The Kubernetes shapes read here. Only the fields listed are understood;
// unknownFields reports every other key of a document as a warning, so that
// adding a field here is what makes it supported. Where a Gateway API or
// Istio object has the same keys as the native schema, the config type is
// reused.

// meta is metadata; keys other than these (uid, annotations, ...) carry no
// behaviour and are skipped without a warning.
type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// object is what every document has. Status is read by nobody: it is the
// cluster's report, not configuration.
type object struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   meta    `yaml:"metadata"`
	Status     skipped `yaml:"status"`
}

// skipped is a known key whose value kvgate does not read: no warning is
// given for it and nothing of it is kept (a yaml.Node would keep a copy of
// the value, which an EndpointSlice holds for each of its endpoints).
type skipped struct{}

// UnmarshalYAML reads nothing.
func (*skipped) UnmarshalYAML(*yaml.Node) error { return nil }

// objRef is a Gateway API reference to another object.
type objRef struct {
	Group     *string `yaml:"group"`
	Kind      *string `yaml:"kind"`
	Name      string  `yaml:"name"`
	Namespace string  `yaml:"namespace"`
}

// Gateway API Gateway.
type gatewayDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		GatewayClassName string       `yaml:"gatewayClassName"`
		Listeners        []gwListener `yaml:"listeners"`
	} `yaml:"spec"`
}

type gwListener struct {
	Name          string         `yaml:"name"`
	Hostname      string         `yaml:"hostname"`
	Port          int            `yaml:"port"`
	Protocol      string         `yaml:"protocol"`
	TLS           *gwTLS         `yaml:"tls"`
	AllowedRoutes *allowedRoutes `yaml:"allowedRoutes"`
}

type gwTLS struct {
	Mode            string   `yaml:"mode"`
	CertificateRefs []objRef `yaml:"certificateRefs"`
}

type allowedRoutes struct {
	Namespaces *struct {
		From     string    `yaml:"from"`
		Selector yaml.Node `yaml:"selector"`
	} `yaml:"namespaces"`
	Kinds []struct {
		Group *string `yaml:"group"`
		Kind  string  `yaml:"kind"`
	} `yaml:"kinds"`
}

// Gateway API HTTPRoute.
type routeDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		ParentRefs []parentRef `yaml:"parentRefs"`
		Hostnames  []string    `yaml:"hostnames"`
		Rules      []routeRule `yaml:"rules"`
	} `yaml:"spec"`
}

type parentRef struct {
	objRef      `yaml:",inline"`
	SectionName string `yaml:"sectionName"`
	Port        int    `yaml:"port"`
}

type routeRule struct {
	Name        string        `yaml:"name"`
	Matches     []routeMatch  `yaml:"matches"`
	Filters     []routeFilter `yaml:"filters"`
	BackendRefs []backendRef  `yaml:"backendRefs"`
	Timeouts    *struct {
		Request        *config.Duration `yaml:"request"`
		BackendRequest *config.Duration `yaml:"backendRequest"`
	} `yaml:"timeouts"`
	Retry *struct {
		Codes    []int           `yaml:"codes"`
		Attempts *int            `yaml:"attempts"`
		Backoff  config.Duration `yaml:"backoff"`
	} `yaml:"retry"`
}

type routeMatch struct {
	Path        *config.PathMatch    `yaml:"path"`
	Headers     []config.HeaderMatch `yaml:"headers"`
	QueryParams []config.HeaderMatch `yaml:"queryParams"`
	Method      string               `yaml:"method"`
}

type routeFilter struct {
	Type                   string                  `yaml:"type"`
	RequestHeaderModifier  *config.HeaderModifier  `yaml:"requestHeaderModifier"`
	ResponseHeaderModifier *config.HeaderModifier  `yaml:"responseHeaderModifier"`
	URLRewrite             *config.URLRewrite      `yaml:"urlRewrite"`
	RequestRedirect        *config.RequestRedirect `yaml:"requestRedirect"`
	RequestMirror          *struct {
		BackendRef backendRef `yaml:"backendRef"`
		Percent    *int       `yaml:"percent"`
		Fraction   *struct {
			Numerator   int  `yaml:"numerator"`
			Denominator *int `yaml:"denominator"`
		} `yaml:"fraction"`
	} `yaml:"requestMirror"`
	ExtensionRef yaml.Node `yaml:"extensionRef"`
	CORS         yaml.Node `yaml:"cors"`
}

type backendRef struct {
	objRef  `yaml:",inline"`
	Port    int           `yaml:"port"`
	Weight  *int          `yaml:"weight"`
	Filters []routeFilter `yaml:"filters"`
}

// Inference Extension InferencePool of every version read:
// inference.networking.k8s.io/v1 and inference.networking.x-k8s.io/v1alpha2
// and v1alpha1. Published manifests mix the versions' field names, so each
// spelling is read under every version, and one that is not the declared
// version's own is a warning (see inferencePoolDoc in inferencepool.go).
type poolDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		// Selector is {matchLabels: {k: v}} in v1 and {k: v} in the alphas;
		// poolSelector reads either.
		Selector          yaml.Node    `yaml:"selector"`
		TargetPorts       []portNumber `yaml:"targetPorts"`       // v1
		TargetPortNumber  int          `yaml:"targetPortNumber"`  // v1alpha2, v1alpha1
		TargetPort        int          `yaml:"targetPort"`        // no version; seen in published v1alpha1 manifests
		EndpointPickerRef yaml.Node    `yaml:"endpointPickerRef"` // v1
		ExtensionRef      yaml.Node    `yaml:"extensionRef"`      // v1alpha2, v1alpha1
	} `yaml:"spec"`
}

// portNumber is an item of an InferencePool's targetPorts.
type portNumber struct {
	Number int `yaml:"number"`
}

// poolRef names an InferencePool from a model or objective.
type poolRef struct {
	Group string `yaml:"group"`
	Kind  string `yaml:"kind"`
	Name  string `yaml:"name"`
}

// InferenceModel (v1alpha1, v1alpha2).
type modelDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		ModelName    string  `yaml:"modelName"`
		Criticality  *string `yaml:"criticality"`
		TargetModels []struct {
			Name   string `yaml:"name"`
			Weight *int   `yaml:"weight"`
		} `yaml:"targetModels"`
		PoolRef poolRef `yaml:"poolRef"`
	} `yaml:"spec"`
}

// InferenceObjective (v1alpha2).
type objectiveDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		Priority *int    `yaml:"priority"`
		PoolRef  poolRef `yaml:"poolRef"`
	} `yaml:"spec"`
}

// Istio AuthorizationPolicy (security.istio.io v1 and v1beta1).
type policyDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector *struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Action string `yaml:"action"`
		Rules  []struct {
			From []struct {
				Source config.AuthzFrom `yaml:"source"`
			} `yaml:"from"`
			To []struct {
				Operation config.AuthzTo `yaml:"operation"`
			} `yaml:"to"`
			When []config.AuthzCondition `yaml:"when"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

// Service (core v1). The fields listed as yaml.Node are cluster plumbing
// that has no meaning on the proxy and is skipped without a warning.
type serviceDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector     map[string]string `yaml:"selector"`
		Ports        []servicePort     `yaml:"ports"`
		Type         string            `yaml:"type"`
		ExternalName string            `yaml:"externalName"`
		ClusterIP    yaml.Node         `yaml:"clusterIP"`
		ClusterIPs   yaml.Node         `yaml:"clusterIPs"`
		IPFamilies   yaml.Node         `yaml:"ipFamilies"`
		IPFamilyPol  yaml.Node         `yaml:"ipFamilyPolicy"`
		Internal     yaml.Node         `yaml:"internalTrafficPolicy"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name        string    `yaml:"name"`
	Port        int       `yaml:"port"`
	TargetPort  yaml.Node `yaml:"targetPort"` // number or name
	Protocol    string    `yaml:"protocol"`
	AppProtocol string    `yaml:"appProtocol"`
}

// EndpointSlice (discovery.k8s.io/v1).
type sliceDoc struct {
	object      `yaml:",inline"`
	AddressType string          `yaml:"addressType"`
	Endpoints   []sliceEndpoint `yaml:"endpoints"`
	Ports       []slicePort     `yaml:"ports"`
}

type sliceEndpoint struct {
	Addresses  []string        `yaml:"addresses"`
	Conditions sliceConditions `yaml:"conditions"`
	Hostname   skipped         `yaml:"hostname"`
	NodeName   skipped         `yaml:"nodeName"`
	Zone       skipped         `yaml:"zone"`
	TargetRef  skipped         `yaml:"targetRef"`
	Hints      skipped         `yaml:"hints"`
}

type slicePort struct {
	Name        *string `yaml:"name"`
	Port        *int    `yaml:"port"`
	Protocol    string  `yaml:"protocol"`
	AppProtocol string  `yaml:"appProtocol"`
}

// Pod (core v1), read as a source of an InferencePool's endpoints: where
// it is and whether it serves. Its other keys are not configuration and are
// skipped without a warning.
type podDoc struct {
	Metadata struct {
		Labels            map[string]string `yaml:"labels"`
		DeletionTimestamp string            `yaml:"deletionTimestamp"`
	} `yaml:"metadata"`
	Status struct {
		PodIP      string         `yaml:"podIP"`
		Conditions []podCondition `yaml:"conditions"`
	} `yaml:"status"`
}

type podCondition struct {
	Type   string `yaml:"type"`
	Status string `yaml:"status"`
}

// ready reports whether the pod takes new requests: it has an address, its
// Ready condition is True and it is not being deleted (terminating).
func (p *podDoc) ready() bool {
	if p.Status.PodIP == "" || p.Metadata.DeletionTimestamp != "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// Gateway API ReferenceGrant (v1beta1, v1): read with Options.Live only.
type grantDoc struct {
	object `yaml:",inline"`
	Spec   struct {
		From []grantFrom `yaml:"from"`
		To   []grantTo   `yaml:"to"`
	} `yaml:"spec"`
}

type grantFrom struct {
	Group     string `yaml:"group"`
	Kind      string `yaml:"kind"`
	Namespace string `yaml:"namespace"`
}

type grantTo struct {
	Group string  `yaml:"group"`
	Kind  string  `yaml:"kind"`
	Name  *string `yaml:"name"`
}

// sliceConditions are an EndpointSlice endpoint's conditions.
type sliceConditions struct {
	Ready       *bool `yaml:"ready"`
	Serving     *bool `yaml:"serving"`
	Terminating *bool `yaml:"terminating"`
}

// usable reports whether an endpoint takes new requests: ready (serving and
// not terminating; an unset condition counts as true, as in Kubernetes),
// and never while terminating, even where ready is forced (a Service that
// publishes not-ready addresses).
func (c sliceConditions) usable() bool {
	if c.Terminating != nil && *c.Terminating {
		return false
	}
	if c.Ready != nil {
		return *c.Ready
	}
	return c.Serving == nil || *c.Serving
}
