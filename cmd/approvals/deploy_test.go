package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The deployment files under deploy/ name only settings the server knows
// and the README documents, and the Kubernetes manifests keep what HA
// needs: two or more replicas, probes on /healthz and /readyz, a
// PodDisruptionBudget, secrets through _FILE variables only.
func TestDeployManifests(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
		if s.secret {
			known[s.env+"_FILE"] = true
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	files = append(files, "../../deploy/compose.yaml")
	varRE := regexp.MustCompile(`^APPROVALS_[A-Z0-9_]+$`)
	var docs []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			docs = append(docs, doc)
			walk(doc, func(s string) {
				if !varRE.MatchString(s) {
					return
				}
				if !known[s] {
					t.Errorf("%s names %s, which is no setting of approvals serve", f, s)
				}
				if !strings.Contains(string(readme), "`"+strings.TrimSuffix(s, "_FILE")+"`") {
					t.Errorf("%s names %s, which the README's configuration table does not document", f, s)
				}
				for _, secret := range []string{"APPROVALS_DATABASE_URL", "APPROVALS_CONNECTOR_PASSWORD", "APPROVALS_API_KEYS", "APPROVALS_OIDC_CLIENT_SECRET"} {
					if s == secret {
						t.Errorf("%s sets the secret %s directly; use %s_FILE", f, s, s)
					}
				}
			})
		}
	}
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		if k, ok := d["kind"].(string); ok {
			kinds[k] = d
		}
	}
	dep := kinds["Deployment"]
	if dep == nil || kinds["PodDisruptionBudget"] == nil {
		t.Fatalf("the manifests need a Deployment and a PodDisruptionBudget; kinds %v", keys(kinds))
	}
	spec := dep["spec"].(map[string]any)
	if r, _ := spec["replicas"].(int); r < 2 {
		t.Errorf("the Deployment runs %v replicas; want 2 or more", spec["replicas"])
	}
	c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	probe := func(name string) string {
		p, _ := c[name].(map[string]any)
		g, _ := p["httpGet"].(map[string]any)
		s, _ := g["path"].(string)
		return s
	}
	if probe("livenessProbe") != "/healthz" || probe("readinessProbe") != "/readyz" {
		t.Errorf("probes: liveness %q, readiness %q; want /healthz and /readyz", probe("livenessProbe"), probe("readinessProbe"))
	}
}

func walk(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, v := range x {
			fn(k)
			walk(v, fn)
		}
	case []any:
		for _, v := range x {
			walk(v, fn)
		}
	case string:
		fn(x)
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
