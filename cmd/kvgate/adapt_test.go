package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
)

const testdata = "../../config/adapt/testdata"

func TestAdaptCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runAdapt([]string{"--endpoints", "vllm-llama=10.0.2.1", filepath.Join(testdata, "inferencepool-v1.yaml")}, &out, &errOut)
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, errOut.String())
	}
	c, err := config.Parse(out.Bytes(), "stdout")
	if err != nil {
		t.Fatalf("stdout is not a valid config: %v\n%s", err, out.String())
	}
	if len(c.Pools) != 1 || c.Pools[0].Endpoints[0] != "10.0.2.1:8000" {
		t.Errorf("pools = %+v", c.Pools)
	}
	if !strings.Contains(errOut.String(), "warning: ") || !strings.Contains(errOut.String(), "endpointPickerRef") {
		t.Errorf("stderr = %q, want the endpointPickerRef warning", errOut.String())
	}

	out.Reset()
	errOut.Reset()
	err = runAdapt([]string{"--strict", "--endpoints", "vllm-llama=10.0.2.1", filepath.Join(testdata, "inferencepool-v1.yaml")}, &out, &errOut)
	if exitCode(err) != 3 {
		t.Errorf("--strict with warnings: err %v, code %d, want 3", err, exitCode(err))
	}

	errOut.Reset()
	err = runAdapt([]string{filepath.Join(testdata, "no-endpoints.yaml")}, &out, &errOut)
	if exitCode(err) != 1 || !strings.Contains(errOut.String(), "InferencePool default/lonely") {
		t.Errorf("no endpoints: err %v, stderr %q", err, errOut.String())
	}
	if err := runAdapt(nil, &out, &errOut); exitCode(err) != 2 {
		t.Errorf("no files: err %v", err)
	}
}

func TestValidateAcceptsManifests(t *testing.T) {
	var out bytes.Buffer
	path := filepath.Join(testdata, "inferencepool-v1.yaml")
	if err := runValidate([]string{"--endpoints", "vllm-llama=10.0.2.1", "--config", path}, &out); err != nil {
		t.Fatalf("validate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "is valid") || !strings.Contains(out.String(), "warning: ") {
		t.Errorf("output = %q", out.String())
	}
	out.Reset()
	if err := runValidate([]string{"--config", filepath.Join(testdata, "no-endpoints.yaml")}, &out); err == nil {
		t.Errorf("a pool without endpoints validated:\n%s", out.String())
	}
}
